// XNOR/popcount convolution over bit-packed NHWC input (u64 words read as u32 pairs) and
// filters in the CPU's 16-lane panel layout. A workgroup covers one panel (16 output
// channels, one per x invocation) and 16 output pixels (4 per y invocation). Padded taps are
// skipped, so `dot = valid_taps * channels - 2 * popcount(a ^ w)` is exact (padding bits are 0
// on both sides) and equal to the CPU's integers.

struct Params {
    rows: u32,
    in_h: u32,
    in_w: u32,
    out_h: u32,
    out_w: u32,
    kernel: u32,
    stride: u32,
    padding: u32,
    dilation: u32,
    channels: u32,
    // u64 words per pixel.
    words: u32,
    out_channels: u32,
    relu: u32,
    // 1: write the integer dot products (bit cast) instead of the scaled outputs.
    integer: u32,
    // Workgroups along x; more pixel blocks continue along z.
    blocks_x: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> packed: array<u32>;
@group(0) @binding(2) var<storage, read> filters: array<u32>;
@group(0) @binding(3) var<storage, read> alpha: array<f32>;
@group(0) @binding(4) var<storage, read_write> output: array<f32>;

const PANEL: u32 = 16u;

// Writes output `row` of channel `o` from its integer dot product.
fn emit(row: u32, o: u32, dot: i32) {
    if row >= params.rows {
        return;
    }
    var y: f32;
    if params.integer == 1u {
        y = bitcast<f32>(dot);
    } else {
        y = alpha[o] * f32(dot);
        if params.relu == 1u {
            y = max(y, 0.0);
        }
    }
    output[row * params.out_channels + o] = y;
}

// Each invocation computes 4 consecutive output pixels of one channel, as vec4 lanes (so the
// arithmetic stays in registers on every backend, software ones included).
@compute @workgroup_size(16, 4)
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_id) local: vec3<u32>) {
    let o = group.y * PANEL + local.x;
    let first = ((group.x + group.z * params.blocks_x) * 4u + local.y) * 4u;
    let depth = params.kernel * params.kernel * params.words;
    let per_sample = params.out_h * params.out_w;
    // Word pair of this lane at depth step 0 of its panel.
    let lane_base = (group.y * depth * PANEL + local.x) * 2u;

    let row = min(vec4<u32>(first) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(params.rows - 1u));
    let pixel = row % per_sample;
    let sample_base = (row / per_sample) * params.in_h * params.in_w;
    let oy = vec4<i32>((pixel / params.out_w) * params.stride) - i32(params.padding);
    let ox = vec4<i32>((pixel % params.out_w) * params.stride) - i32(params.padding);
    let zero = vec4<u32>(0u);
    var counts = zero;
    var valid = zero;
    for (var ky = 0u; ky < params.kernel; ky++) {
        let iy = oy + i32(ky * params.dilation);
        for (var kx = 0u; kx < params.kernel; kx++) {
            let ix = ox + i32(kx * params.dilation);
            let inside = (iy >= vec4<i32>(0)) & (iy < vec4<i32>(i32(params.in_h))) & (ix >= vec4<i32>(0))
                & (ix < vec4<i32>(i32(params.in_w)));
            valid += select(zero, vec4<u32>(1u), inside);
            // Padded taps read word 0 and are masked out.
            let source = select(zero, sample_base + vec4<u32>(iy) * params.in_w + vec4<u32>(ix), inside);
            let tap = ky * params.kernel + kx;
            for (var w = 0u; w < params.words; w++) {
                let f = lane_base + (tap * params.words + w) * PANEL * 2u;
                let f_lo = vec4<u32>(filters[f]);
                let f_hi = vec4<u32>(filters[f + 1u]);
                let a = (source * params.words + w) * 2u;
                let lo = vec4<u32>(packed[a.x], packed[a.y], packed[a.z], packed[a.w]);
                let hi = vec4<u32>(packed[a.x + 1u], packed[a.y + 1u], packed[a.z + 1u], packed[a.w + 1u]);
                counts += select(zero, countOneBits(lo ^ f_lo) + countOneBits(hi ^ f_hi), inside);
            }
        }
    }
    if o >= params.out_channels {
        return;
    }
    let dot = vec4<i32>(valid * params.channels) - 2 * vec4<i32>(counts);
    emit(first, o, dot.x);
    emit(first + 1u, o, dot.y);
    emit(first + 2u, o, dot.z);
    emit(first + 3u, o, dot.w);
}

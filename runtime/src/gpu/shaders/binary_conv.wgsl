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
const ROWS: u32 = 4u;

@compute @workgroup_size(16, 4)
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_id) local: vec3<u32>) {
    let o = group.y * PANEL + local.x;
    let first = ((group.x + group.z * params.blocks_x) * 4u + local.y) * ROWS;
    let taps = params.kernel * params.kernel;
    let depth = taps * params.words;
    let per_sample = params.out_h * params.out_w;
    // Word pair of this lane at depth step 0 of its panel.
    let lane_base = (group.y * depth * PANEL + local.x) * 2u;

    var counts = array<u32, 4>(0u, 0u, 0u, 0u);
    var valid = array<u32, 4>(0u, 0u, 0u, 0u);
    var sample_base = array<u32, 4>(0u, 0u, 0u, 0u);
    var oy = array<i32, 4>(0, 0, 0, 0);
    var ox = array<i32, 4>(0, 0, 0, 0);
    for (var r = 0u; r < ROWS; r++) {
        let row = min(first + r, params.rows - 1u);
        let pixel = row % per_sample;
        sample_base[r] = (row / per_sample) * params.in_h * params.in_w;
        oy[r] = i32((pixel / params.out_w) * params.stride) - i32(params.padding);
        ox[r] = i32((pixel % params.out_w) * params.stride) - i32(params.padding);
    }
    for (var ky = 0u; ky < params.kernel; ky++) {
        for (var kx = 0u; kx < params.kernel; kx++) {
            let tap = ky * params.kernel + kx;
            var source = array<i32, 4>(-1, -1, -1, -1);
            for (var r = 0u; r < ROWS; r++) {
                let iy = oy[r] + i32(ky * params.dilation);
                let ix = ox[r] + i32(kx * params.dilation);
                if iy >= 0 && iy < i32(params.in_h) && ix >= 0 && ix < i32(params.in_w) {
                    source[r] = i32(sample_base[r] + u32(iy) * params.in_w + u32(ix));
                    valid[r] += 1u;
                }
            }
            for (var w = 0u; w < params.words; w++) {
                let f = lane_base + (tap * params.words + w) * PANEL * 2u;
                let f_lo = filters[f];
                let f_hi = filters[f + 1u];
                for (var r = 0u; r < ROWS; r++) {
                    if source[r] >= 0 {
                        let a = (u32(source[r]) * params.words + w) * 2u;
                        counts[r] += countOneBits(packed[a] ^ f_lo) + countOneBits(packed[a + 1u] ^ f_hi);
                    }
                }
            }
        }
    }
    if o >= params.out_channels {
        return;
    }
    for (var r = 0u; r < ROWS; r++) {
        let row = first + r;
        if row < params.rows {
            let dot = i32(valid[r] * params.channels) - 2 * i32(counts[r]);
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
    }
}

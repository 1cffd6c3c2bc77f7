// Float convolution as a tiled implicit GEMM: output pixels x output channels, depth
// `(c, ky, kx)` in the order of an `[out, in, k, k]` weight row. A 16 x 16 workgroup computes
// a 64 x 64 tile (4 x 4 outputs per invocation, strided by 16 so that neighbours touch
// neighbouring words), staging 16-deep slices of the gathered input and of the weights in
// workgroup memory. The input transform (BatchNorm, ReLU, or the compat convs' sign) is applied
// while gathering; padded taps are 0 after it, as on the CPU. Bias, BatchNorm and ReLU follow.

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
    out_channels: u32,
    depth: u32,
    // INPUT_BN | INPUT_RELU | BINARIZE | BIAS | OUTPUT_BN | RELU.
    flags: u32,
    blocks_x: u32,
    _pad0: u32,
    _pad1: u32,
}

const INPUT_BN: u32 = 1u;
const INPUT_RELU: u32 = 2u;
const BINARIZE: u32 = 4u;
const BIAS: u32 = 8u;
const OUTPUT_BN: u32 = 16u;
const RELU: u32 = 32u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
// scale[C], shift[C] (input BatchNorm), then sign[C], threshold[C] (sign fold).
@group(0) @binding(3) var<storage, read> input_fold: array<f32>;
// bias[O], then scale[O], shift[O] (output BatchNorm).
@group(0) @binding(4) var<storage, read> output_fold: array<f32>;
// Per depth index k: its channel, then its tap's offset in the window, `dy << 16 | dx` (dilation
// included), so that the gather needs no division.
@group(0) @binding(5) var<storage, read> depth_taps: array<u32>;
@group(0) @binding(6) var<storage, read_write> output: array<f32>;

const TILE: u32 = 64u;
const DEPTH_STEP: u32 = 16u;

// [DEPTH_STEP][TILE] slices of the gathered input (rows) and the weights (columns).
var<workgroup> a_tile: array<f32, 1024>;
var<workgroup> b_tile: array<f32, 1024>;

fn has(flag: u32) -> bool {
    return (params.flags & flag) != 0u;
}

// Where output pixel `row` reads: its sample's first input pixel and the top-left corner of its
// window (negative inside the padding); `valid` is false past the last row.
struct Origin {
    sample_base: u32,
    y: i32,
    x: i32,
    valid: bool,
}

fn origin(row: u32) -> Origin {
    let per_sample = params.out_h * params.out_w;
    let pixel = row % per_sample;
    return Origin(
        (row / per_sample) * params.in_h * params.in_w,
        i32((pixel / params.out_w) * params.stride) - i32(params.padding),
        i32((pixel % params.out_w) * params.stride) - i32(params.padding),
        row < params.rows,
    );
}

// The transformed input at `origin`'s pixel and depth index `k`; 0 outside the map.
fn gather(at: Origin, k: u32) -> f32 {
    if !at.valid || k >= params.depth {
        return 0.0;
    }
    let c = depth_taps[2u * k];
    let offset = depth_taps[2u * k + 1u];
    let iy = at.y + i32(offset >> 16u);
    let ix = at.x + i32(offset & 0xffffu);
    if iy < 0 || iy >= i32(params.in_h) || ix < 0 || ix >= i32(params.in_w) {
        return 0.0;
    }
    var x = input[(at.sample_base + u32(iy) * params.in_w + u32(ix)) * params.channels + c];
    if has(INPUT_BN) {
        x = x * input_fold[c] + input_fold[params.channels + c];
    }
    if has(INPUT_RELU) {
        x = max(x, 0.0);
    }
    if has(BINARIZE) {
        let cs = 2u * params.channels;
        x = select(-1.0, 1.0, input_fold[cs + c] * x >= input_fold[cs + params.channels + c]);
    }
    return x;
}

// Bias, output BatchNorm and ReLU on one output.
fn finish(col: u32, value: f32) -> f32 {
    var y = value;
    if has(BIAS) {
        y += output_fold[col];
    }
    if has(OUTPUT_BN) {
        y = y * output_fold[params.out_channels + col] + output_fold[2u * params.out_channels + col];
    }
    if has(RELU) {
        y = max(y, 0.0);
    }
    return y;
}

// Writes columns `col + 16 j` of output `row` from lane j of `acc`.
fn store(row: u32, col: u32, acc: vec4<f32>) {
    if row >= params.rows {
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        let c = col + 16u * j;
        if c < params.out_channels {
            output[row * params.out_channels + c] = finish(c, acc[j]);
        }
    }
}

@compute @workgroup_size(16, 16)
fn main(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(local_invocation_id) local: vec3<u32>,
    @builtin(local_invocation_index) index: u32,
) {
    let row0 = (group.x + group.z * params.blocks_x) * TILE;
    let col0 = group.y * TILE;
    // This invocation stages row (and column) `index % TILE` of each slice, at depths
    // `index / TILE + 4 i`.
    let m = index % TILE;
    // Outputs (local.y + 16 i, local.x + 16 j): row i in acc_i, column j in its lane j.
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    let at = origin(row0 + m);
    let n = col0 + m;
    for (var k0 = 0u; k0 < params.depth; k0 += DEPTH_STEP) {
        for (var i = 0u; i < 4u; i++) {
            let e = index + i * 256u;
            let kk = e / TILE;
            a_tile[e] = gather(at, k0 + kk);
            var w = 0.0;
            if n < params.out_channels && k0 + kk < params.depth {
                w = weight[n * params.depth + k0 + kk];
            }
            b_tile[e] = w;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < DEPTH_STEP; kk++) {
            let base = kk * TILE;
            let b = vec4<f32>(
                b_tile[base + local.x],
                b_tile[base + local.x + 16u],
                b_tile[base + local.x + 32u],
                b_tile[base + local.x + 48u],
            );
            acc0 += a_tile[base + local.y] * b;
            acc1 += a_tile[base + local.y + 16u] * b;
            acc2 += a_tile[base + local.y + 32u] * b;
            acc3 += a_tile[base + local.y + 48u] * b;
        }
        workgroupBarrier();
    }
    let col = col0 + local.x;
    store(row0 + local.y, col, acc0);
    store(row0 + local.y + 16u, col, acc1);
    store(row0 + local.y + 32u, col, acc2);
    store(row0 + local.y + 48u, col, acc3);
}

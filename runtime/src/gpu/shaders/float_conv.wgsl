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
@group(0) @binding(5) var<storage, read_write> output: array<f32>;

const TILE: u32 = 64u;
const DEPTH_STEP: u32 = 16u;

// [DEPTH_STEP][TILE] slices of the gathered input (rows) and the weights (columns).
var<workgroup> a_tile: array<f32, 1024>;
var<workgroup> b_tile: array<f32, 1024>;

fn has(flag: u32) -> bool {
    return (params.flags & flag) != 0u;
}

// The transformed input at output pixel `row` and depth index `k`; 0 outside the map.
fn gather(row: u32, k: u32) -> f32 {
    if row >= params.rows || k >= params.depth {
        return 0.0;
    }
    let taps = params.kernel * params.kernel;
    let per_sample = params.out_h * params.out_w;
    let pixel = row % per_sample;
    let c = k / taps;
    let tap = k % taps;
    let iy = i32((pixel / params.out_w) * params.stride + (tap / params.kernel) * params.dilation)
        - i32(params.padding);
    let ix = i32((pixel % params.out_w) * params.stride + (tap % params.kernel) * params.dilation)
        - i32(params.padding);
    if iy < 0 || iy >= i32(params.in_h) || ix < 0 || ix >= i32(params.in_w) {
        return 0.0;
    }
    let sample = row / per_sample;
    var x = input[((sample * params.in_h + u32(iy)) * params.in_w + u32(ix)) * params.channels + c];
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

@compute @workgroup_size(16, 16)
fn main(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(local_invocation_id) local: vec3<u32>,
    @builtin(local_invocation_index) index: u32,
) {
    let row0 = (group.x + group.z * params.blocks_x) * TILE;
    let col0 = group.y * TILE;
    var acc: array<f32, 16>;
    for (var k0 = 0u; k0 < params.depth; k0 += DEPTH_STEP) {
        for (var i = 0u; i < 4u; i++) {
            let e = index + i * 256u;
            let kk = e / TILE;
            let m = e % TILE;
            a_tile[e] = gather(row0 + m, k0 + kk);
            let n = col0 + m;
            var w = 0.0;
            if n < params.out_channels && k0 + kk < params.depth {
                w = weight[n * params.depth + k0 + kk];
            }
            b_tile[e] = w;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < DEPTH_STEP; kk++) {
            var a: array<f32, 4>;
            var b: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                a[i] = a_tile[kk * TILE + local.y + 16u * i];
                b[i] = b_tile[kk * TILE + local.x + 16u * i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i * 4u + j] += a[i] * b[j];
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + local.y + 16u * i;
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + local.x + 16u * j;
            if row < params.rows && col < params.out_channels {
                var y = acc[i * 4u + j];
                if has(BIAS) {
                    y += output_fold[col];
                }
                if has(OUTPUT_BN) {
                    y = y * output_fold[params.out_channels + col] + output_fold[2u * params.out_channels + col];
                }
                if has(RELU) {
                    y = max(y, 0.0);
                }
                output[row * params.out_channels + col] = y;
            }
        }
    }
}

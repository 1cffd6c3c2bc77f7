// Max pooling (padding ignored) and average pooling (divided by the real inputs in the
// window) over NHWC maps, one invocation per output value, taps in the CPU's order.

struct Params {
    total: u32,
    channels: u32,
    in_h: u32,
    in_w: u32,
    out_h: u32,
    out_w: u32,
    kernel: u32,
    stride: u32,
    padding: u32,
    dilation: u32,
    // 1: max, 0: mean.
    max: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read_write> output: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups, 256u);
    if i >= params.total {
        return;
    }
    let c = i % params.channels;
    let row = i / params.channels;
    let per_sample = params.out_h * params.out_w;
    let sample = row / per_sample;
    let pixel = row % per_sample;
    let oy = i32((pixel / params.out_w) * params.stride) - i32(params.padding);
    let ox = i32((pixel % params.out_w) * params.stride) - i32(params.padding);
    var y = 0.0;
    if params.max == 1u {
        y = bitcast<f32>(0xff800000u);
    }
    var count = 0u;
    for (var ky = 0u; ky < params.kernel; ky++) {
        let iy = oy + i32(ky * params.dilation);
        if iy < 0 || iy >= i32(params.in_h) {
            continue;
        }
        for (var kx = 0u; kx < params.kernel; kx++) {
            let ix = ox + i32(kx * params.dilation);
            if ix < 0 || ix >= i32(params.in_w) {
                continue;
            }
            let x = input[((sample * params.in_h + u32(iy)) * params.in_w + u32(ix)) * params.channels + c];
            count += 1u;
            if params.max == 1u {
                y = max(y, x);
            } else {
                y += x;
            }
        }
    }
    if params.max == 0u {
        y *= 1.0 / f32(count);
    }
    output[i] = y;
}

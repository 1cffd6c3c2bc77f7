// The API's NCHW input to the executor's NHWC layout.

struct Params {
    total: u32,
    channels: u32,
    pixels: u32,
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
    let per_sample = params.pixels * params.channels;
    let p = (i % per_sample) / params.channels;
    let c = i % params.channels;
    output[i] = input[(i / per_sample) * per_sample + c * params.pixels + p];
}

// Mean over each sample's map, per channel, summed in the CPU's pixel order.

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
    let sample = i / params.channels;
    let c = i % params.channels;
    var sum = 0.0;
    for (var p = 0u; p < params.pixels; p++) {
        sum += input[(sample * params.pixels + p) * params.channels + c];
    }
    output[i] = sum * (1.0 / f32(params.pixels));
}

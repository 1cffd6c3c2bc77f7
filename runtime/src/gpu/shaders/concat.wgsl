// One part of a channel concatenation: copies an input's channels (or writes zeros) into
// channels `offset..offset + part` of every output pixel.

struct Params {
    pixels: u32,
    part: u32,
    channels: u32,
    offset: u32,
    zeros: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read_write> output: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups, 256u);
    if i >= params.pixels * params.part {
        return;
    }
    let pixel = i / params.part;
    var x = 0.0;
    if params.zeros == 0u {
        x = input[i];
    }
    output[pixel * params.channels + params.offset + i % params.part] = x;
}

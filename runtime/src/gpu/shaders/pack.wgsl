// BatchNorm + sign + bit packing of an NHWC map: bit `c % 32` of u32 `c / 32` of a pixel is
// set iff `sign[c] * x >= threshold[c]` (the CPU's fold, so the bits are identical). Two u32s
// are the CPU's LSB-first u64 word; bits past the last channel stay 0.

struct Params {
    pixels: u32,
    channels: u32,
    // u32 words per pixel: twice the u64 words.
    halves: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
// sign[channels], then threshold[channels].
@group(0) @binding(2) var<storage, read> fold: array<f32>;
@group(0) @binding(3) var<storage, read_write> packed: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups, 256u);
    if i >= params.pixels * params.halves {
        return;
    }
    let pixel = i / params.halves;
    let first = (i % params.halves) * 32u;
    let last = min(first + 32u, params.channels);
    var bits = 0u;
    for (var c = first; c < last; c++) {
        if fold[c] * x[pixel * params.channels + c] >= fold[params.channels + c] {
            bits |= 1u << (c - first);
        }
    }
    packed[i] = bits;
}

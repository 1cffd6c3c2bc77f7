// The classifier, `y = W x + b`: one dot product per (sample, output), in 16 lanes like the
// CPU's, so that every sample gets the same arithmetic whatever the batch.

struct Params {
    total: u32,
    in_features: u32,
    out_features: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> output: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups, 64u);
    if i >= params.total {
        return;
    }
    let k = params.in_features;
    let x = (i / params.out_features) * k;
    let w = (i % params.out_features) * k;
    var lanes: array<f32, 16>;
    let blocks = k / 16u;
    for (var b = 0u; b < blocks; b++) {
        for (var l = 0u; l < 16u; l++) {
            lanes[l] += input[x + b * 16u + l] * weight[w + b * 16u + l];
        }
    }
    var tail = 0.0;
    for (var j = blocks * 16u; j < k; j++) {
        tail += input[x + j] * weight[w + j];
    }
    var sum = 0.0;
    for (var l = 0u; l < 16u; l++) {
        sum += lanes[l];
    }
    output[i] = bias[i % params.out_features] + (sum + tail);
}

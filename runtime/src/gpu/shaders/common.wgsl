// Shared by every kernel: large 1-D dispatches are split over x and y (a dimension holds at
// most 65535 workgroups), and this recovers the flat invocation index.
fn flat_index(gid: vec3<u32>, groups: vec3<u32>, size: u32) -> u32 {
    return gid.x + gid.y * groups.x * size;
}

#version 330 core
// @effect Vignette: darkens towards the corners.
// @param radius   0.75 0.1  1.5 | where the darkening starts (1 = the corners)
// @param softness 0.45 0.01 1   | width of the fall-off
// @param amount   1    0    1   | 0 = off
uniform sampler2D scene;
uniform vec2 resolution;
uniform float radius;
uniform float softness;
uniform float amount;

in vec2 uv;
out vec4 frag;

void main() {
    vec3 c = texture(scene, uv).rgb;
    vec2 asp = vec2(resolution.x / resolution.y, 1.0);
    float r = length((uv - 0.5) * asp) / length(0.5 * asp);  // 0 centre, 1 corner
    float v = 1.0 - smoothstep(radius - softness, radius, r);
    frag = vec4(c * mix(1.0, v, amount), 1.0);
}

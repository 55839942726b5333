#version 330 core
// @effect RGB split: red and blue pulled apart along a direction; onsets widen the split.
// @param offset 0.006 0 0.05   | shift of red and blue, fraction of the frame height
// @param angle  0     0 6.2832 | direction of the shift, radians
// @param kick   0.5   0 4      | how much the onset envelope widens it
uniform sampler2D scene;
uniform vec2 resolution;
uniform float onset_env;
uniform float offset;
uniform float angle;
uniform float kick;

in vec2 uv;
out vec4 frag;

void main() {
    vec2 d = vec2(cos(angle), sin(angle)) * offset * (1.0 + kick * onset_env)
           * vec2(resolution.y / resolution.x, 1.0);
    float r = texture(scene, uv + d).r;
    float g = texture(scene, uv).g;
    float b = texture(scene, uv - d).b;
    frag = vec4(r, g, b, 1.0);
}

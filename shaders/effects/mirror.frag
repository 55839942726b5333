#version 330 core
// @effect Mirror: one half (or quarter) of the image reflected onto the other.
// @param axis 0 0 2 int  | 0: left-right, 1: bottom-top, 2: both (four quadrants)
// @param flip 0 0 1 bool | reflect the other half instead
uniform sampler2D scene;
uniform float axis;
uniform float flip;

in vec2 uv;
out vec4 frag;

void main() {
    vec2 d = abs(uv - 0.5);
    vec2 m = flip > 0.5 ? 0.5 + d : 0.5 - d;
    vec2 on = vec2(axis != 1.0 ? 1.0 : 0.0, axis != 0.0 ? 1.0 : 0.0);
    frag = vec4(texture(scene, mix(uv, m, on)).rgb, 1.0);
}

#version 330 core
// @effect Zoom blur: eight samples along the ray to a centre; onsets lengthen the streaks.
// @param strength 0.1 0 0.5 | streak length as a share of the distance to the centre
// @param center_x 0.5 0 1   | centre, left (0) to right (1)
// @param center_y 0.5 0 1   | centre, bottom (0) to top (1)
// @param kick     0   0 4   | how much the onset envelope lengthens the streaks
uniform sampler2D scene;
uniform float onset_env;
uniform float strength;
uniform float center_x;
uniform float center_y;
uniform float kick;

in vec2 uv;
out vec4 frag;

const int N = 8;

void main() {
    vec2 c = vec2(center_x, center_y);
    float s = strength * (1.0 + kick * onset_env);
    vec3 acc = vec3(0.0);
    for (int i = 0; i < N; i++) {
        acc += texture(scene, c + (uv - c) * (1.0 - s * float(i) / float(N - 1))).rgb;
    }
    frag = vec4(acc / float(N), 1.0);
}

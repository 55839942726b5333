#version 330 core
// @effect Colour grade: lift / gamma / gain and a warm-cool balance.
// @param lift   0 -0.5 0.5 | raises (or crushes) the shadows
// @param gamma  1 0.2  3   | > 1 brightens the mid-tones
// @param gain   1 0    2   | scales the highlights
// @param warmth 0 -1   1   | + warmer (red up, blue down), - cooler
uniform sampler2D scene;
uniform float lift;
uniform float gamma;
uniform float gain;
uniform float warmth;

in vec2 uv;
out vec4 frag;

void main() {
    vec3 c = texture(scene, uv).rgb;
    c = c * gain + lift * (1.0 - c);
    c = pow(clamp(c, 0.0, 1.0), vec3(1.0 / gamma));
    c *= vec3(1.0 + 0.2 * warmth, 1.0, 1.0 - 0.2 * warmth);
    frag = vec4(clamp(c, 0.0, 1.0), 1.0);
}

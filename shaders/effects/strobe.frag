#version 330 core
// @effect Strobe on the beat: a white (or inverted) flash at the start of every period.
// @param rate   1    0.25 4 | beats per flash
// @param duty   0.15 0.01 1 | share of each period the flash lasts
// @param amount 1    0    1 | flash strength (0 = off)
// @param invert 0    0    1 bool | invert the image instead of flashing white
uniform sampler2D scene;
uniform float beat;  // beats since the start (the tempo source's count)
uniform float rate;
uniform float duty;
uniform float amount;
uniform float invert;

in vec2 uv;
out vec4 frag;

void main() {
    vec3 c = texture(scene, uv).rgb;
    float on = fract(beat / rate) < duty ? 1.0 : 0.0;
    vec3 flash = invert > 0.5 ? 1.0 - c : vec3(1.0);
    frag = vec4(mix(c, flash, on * amount), 1.0);
}

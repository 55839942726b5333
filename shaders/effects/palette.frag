#version 330 core
// @effect Palette map: brightness looked up in a cosine colour palette (a 1-D LUT).
// @param hue    0 0    1 | shifts the palette's colours
// @param spread 1 0.25 4 | colour cycles from black to white
// @param amount 1 0    1 | 0 = original colours
uniform sampler2D scene;
uniform float hue;
uniform float spread;
uniform float amount;

in vec2 uv;
out vec4 frag;

void main() {
    vec3 c = texture(scene, uv).rgb;
    float l = dot(c, vec3(0.2126, 0.7152, 0.0722));
    vec3 p = 0.5 + 0.5 * cos(6.28318531 * (spread * l + hue + vec3(0.0, 0.33, 0.67)));
    frag = vec4(mix(c, p, amount), 1.0);
}

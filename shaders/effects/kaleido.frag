#version 330 core
// Kaleidoscope: mirrored wedges around the centre; the number of wedges and the spin follow the beat.
uniform sampler2D scene;
uniform vec2 resolution;
uniform float time;
uniform float fx_amount;
uniform float fx_pulse;
uniform float beat_phase;
uniform float bands[8];

in vec2 uv;
out vec4 frag;

const float PI = 3.14159265;

void main() {
    vec3 base = texture(scene, uv).rgb;
    float amt = clamp(fx_amount + fx_pulse, 0.0, 1.0);
    vec2 p = (uv - 0.5) * vec2(resolution.x / resolution.y, 1.0);
    float r = length(p);
    float a = atan(p.y, p.x) + time * 0.2 + 0.3 * bands[1];
    float wedges = 6.0 + 2.0 * floor(fx_pulse * 3.0);
    float seg = 2.0 * PI / wedges;
    a = abs(mod(a, seg) - 0.5 * seg);
    r *= 1.0 - 0.08 * pow(1.0 - beat_phase, 3.0);
    vec2 q = vec2(cos(a), sin(a)) * r / vec2(resolution.x / resolution.y, 1.0) + 0.5;
    vec3 k = texture(scene, clamp(q, 0.0, 1.0)).rgb;
    frag = vec4(mix(base, k, amt), 1.0);
}

#version 330 core
// @effect Kaleidoscope: mirrored wedges around the centre, turning; pulls in on each beat.
// @param segments  6    2  16  int | number of mirrored wedges
// @param spin      0.2  -2 2       | turning speed, radians per second
// @param beat_zoom 0.08 0  0.5     | how far it pulls in on each beat
// Mix: fx_amount + fx_pulse (the built-in effect parameters), as before the library.
uniform sampler2D scene;
uniform vec2 resolution;
uniform float time;
uniform float fx_amount;
uniform float fx_pulse;
uniform float beat_phase;
uniform float segments;
uniform float spin;
uniform float beat_zoom;

in vec2 uv;
out vec4 frag;

void main() {
    vec3 base = texture(scene, uv).rgb;
    float amt = clamp(fx_amount + fx_pulse, 0.0, 1.0);
    vec2 asp = vec2(resolution.x / resolution.y, 1.0);
    vec2 p = (uv - 0.5) * asp;
    float r = length(p) * (1.0 - beat_zoom * pow(1.0 - beat_phase, 3.0));
    float seg = 6.28318531 / max(segments, 1.0);
    float a = atan(p.y, p.x) + time * spin;
    a = abs(mod(a, seg) - 0.5 * seg);
    vec2 q = vec2(cos(a), sin(a)) * r / asp + 0.5;
    vec3 k = texture(scene, clamp(q, 0.0, 1.0)).rgb;
    frag = vec4(mix(base, k, amt), 1.0);
}

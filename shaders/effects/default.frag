#version 330 core
// Beat-reactive RGB split plus a breathing feedback zoom that leaves trails on onsets.
uniform sampler2D scene;      // this frame's composite
uniform sampler2D feedback;   // this effect's previous output
uniform vec2 resolution;
uniform float time;           // seconds
uniform float fx_amount;      // 0..1 effect mix (0 = scene unchanged)
uniform float fx_pulse;       // 0..1 onset flash (fx_pulse parameter x onset envelope)
uniform float beat_phase;     // 0..1 within the beat
uniform float bands[8];       // 0..1 band energies, low -> high
uniform float rms;

in vec2 uv;
out vec4 frag;

void main() {
    vec3 base = texture(scene, uv).rgb;
    float amt = clamp(fx_amount + fx_pulse, 0.0, 1.0);
    float beat = pow(1.0 - beat_phase, 4.0);  // sharp at the beat, fades over it

    // RGB split along a slowly turning direction; bass and onsets widen it
    vec2 dir = vec2(cos(time * 0.6), sin(time * 0.6)) * vec2(resolution.y / resolution.x, 1.0);
    float split = 0.003 + 0.025 * fx_pulse + 0.01 * bands[0] + 0.004 * beat;
    vec3 c = vec3(texture(scene, uv + dir * split).r, base.g, texture(scene, uv - dir * split).b);

    // feedback: the last output zoomed toward the centre, so bright parts leave trails
    float z = 1.0 - 0.01 - 0.03 * fx_pulse - 0.01 * rms;
    vec3 fb = texture(feedback, 0.5 + (uv - 0.5) * z).rgb;
    c = max(c, fb * (0.55 + 0.35 * fx_pulse) - 0.004);  // the offset lets 8-bit trails reach 0

    frag = vec4(mix(base, c, amt), 1.0);
}

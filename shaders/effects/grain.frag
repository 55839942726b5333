#version 330 core
// @effect Film grain: integer-hash noise, a new pattern 24 times a second.
// @param amount 0.08 0 0.5 | grain strength
// @param size   1    1 8 int | grain size in pixels
// @param mono   1    0 1 bool | the same grain on all three channels
uniform sampler2D scene;
uniform float time;
uniform float amount;
uniform float size;
uniform float mono;

in vec2 uv;
out vec4 frag;

// integer hash (exact on every GPU and in the NumPy twin, unlike sin-based hashes)
uint hash(uint x) {
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

float unit(uint h) { return float(h & 0xffffu) / 65535.0 - 0.5; }

void main() {
    vec3 c = texture(scene, uv).rgb;
    uvec2 g = uvec2(gl_FragCoord.xy) / uint(max(size, 1.0));
    uint seed = uint(time * 24.0);
    uint h = hash(g.x + hash(g.y + hash(seed)));
    vec3 n = vec3(unit(h), unit(hash(h + 1u)), unit(hash(h + 2u)));
    n = mono > 0.5 ? vec3(n.x) : n;
    frag = vec4(clamp(c + amount * n, 0.0, 1.0), 1.0);
}

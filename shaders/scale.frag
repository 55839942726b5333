#version 330 core
// Output scaler: maps a generator frame onto an output of any size and aspect (fit / fill /
// stretch / mirror-tile) with one of three filters. Lanczos-3 and Catmull-Rom run as two
// separable passes (PASS_X at the source height, then PASS_Y); bilinear is one pass.
// Defines: LANCZOS | BICUBIC | (none: bilinear); PASS_X | PASS_Y; OUTSIDE_BLACK | OUTSIDE_MIRROR.
uniform sampler2D src;
uniform vec2 scale;    // source uv = 0.5 + (uv - 0.5) * scale, per axis (vj/render/fit.py)
uniform vec2 ratio;    // source texels per output pixel, >= 1 (widens the kernel when shrinking)
uniform vec2 origin;   // viewport offset in pixels (gl_FragCoord counts from the framebuffer)
uniform float flip_y;  // 1: the source's row 0 is the image's top (generator frames)

in vec2 uv;
out vec4 frag;

const float PI = 3.14159265;

float outside(float s) { return (s < 0.0 || s > 1.0) ? 1.0 : 0.0; }

float wrap(float s) {
#ifdef OUTSIDE_MIRROR
    return 1.0 - abs(mod(s, 2.0) - 1.0);
#else
    return s;
#endif
}

float kernel(float x) {
#ifdef LANCZOS
    x = abs(x);
    if (x < 1e-5) return 1.0;
    if (x >= 3.0) return 0.0;
    float px = PI * x;
    return 3.0 * sin(px) * sin(px / 3.0) / (px * px);
#else  // Catmull-Rom
    x = abs(x);
    if (x < 1.0) return 1.5 * x * x * x - 2.5 * x * x + 1.0;
    if (x < 2.0) return -0.5 * x * x * x + 2.5 * x * x - 4.0 * x + 2.0;
    return 0.0;
#endif
}

#ifdef LANCZOS
const float SUPPORT = 3.0;
#else
const float SUPPORT = 2.0;
#endif

// one axis of the separable filter: `axis` 0 = x, 1 = y
vec4 filter1d(float s, int axis) {
    ivec2 size = textureSize(src, 0);
    int n = axis == 0 ? size.x : size.y;
    float r = axis == 0 ? ratio.x : ratio.y;
    float p = s * float(n) - 0.5;  // in source texel-centre units
    int reach = int(ceil(SUPPORT * r));
    int c = int(floor(p));
    ivec2 other = ivec2(gl_FragCoord.xy - origin);
    vec4 acc = vec4(0.0);
    float wsum = 0.0;
    for (int i = c - reach + 1; i <= c + reach; i++) {
        float w = kernel((float(i) - p) / r);
        int k = clamp(i, 0, n - 1);
        ivec2 q = axis == 0 ? ivec2(k, other.y) : ivec2(other.x, k);
        acc += w * texelFetch(src, q, 0);
        wsum += w;
    }
    return acc / wsum;
}

void main() {
#if defined(PASS_X)
    float s = wrap(0.5 + (uv.x - 0.5) * scale.x);
    vec4 c = filter1d(s, 0);
#ifdef OUTSIDE_BLACK
    c *= 1.0 - outside(s);
#endif
    frag = c;  // a float target: the negative lobes survive to the second pass
#elif defined(PASS_Y)
    float s = wrap(0.5 + (uv.y - 0.5) * scale.y);
    vec4 c = filter1d(flip_y > 0.5 ? 1.0 - s : s, 1);
#ifdef OUTSIDE_BLACK
    c *= 1.0 - outside(s);
#endif
    frag = vec4(clamp(c.rgb, 0.0, 1.0), 1.0);
#else
    vec2 s = vec2(wrap(0.5 + (uv.x - 0.5) * scale.x), wrap(0.5 + (uv.y - 0.5) * scale.y));
    vec3 c = texture(src, vec2(s.x, flip_y > 0.5 ? 1.0 - s.y : s.y)).rgb;
#ifdef OUTSIDE_BLACK
    c *= (1.0 - outside(s.x)) * (1.0 - outside(s.y));
#endif
    frag = vec4(c, 1.0);
#endif
}

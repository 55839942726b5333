#version 330 core
// Crossfade previous -> current generator frame, cover-fit to the target, zoom, colour controls.
uniform sampler2D prev_tex;   // generator frames, rows stored top row first
uniform sampler2D cur_tex;
uniform float mix_w;          // 0 = previous frame only, 1 = current frame only
uniform vec2 prev_cover;      // per-axis fraction of each source visible at zoom 1 (aspect cover)
uniform vec2 cur_cover;
uniform float zoom;           // > 1 zooms in; < 1 shows mirrored copies around the image
uniform float brightness;     // added
uniform float contrast;       // around mid grey
uniform float saturation;     // 0 = grey, 1 = unchanged

in vec2 uv;
out vec4 frag;

// `cover` is the fit mode's per-axis scale (vj/render/fit.py): < 1 crops, > 1 shows outside
vec2 source_coord(vec2 cover) {
    vec2 s = 0.5 + (uv - 0.5) * cover / zoom;
    s = 1.0 - abs(mod(s, 2.0) - 1.0);  // mirror outside the image (OUTSIDE_BLACK: see main)
    return vec2(s.x, 1.0 - s.y);       // texture row 0 is the image's top row
}

float inside(vec2 cover) {
#ifdef OUTSIDE_BLACK
    vec2 s = 0.5 + (uv - 0.5) * cover / zoom;
    return (s.x < 0.0 || s.x > 1.0 || s.y < 0.0 || s.y > 1.0) ? 0.0 : 1.0;
#else
    return 1.0;
#endif
}

// BICUBIC (defined by the compositor for filter="bicubic"): Catmull-Rom through 4x4 texels;
// texelFetch keeps it exact at texel centres. A define, not a uniform: llvmpipe would run both.
#ifdef BICUBIC
vec4 sample_bicubic(sampler2D tex, vec2 st) {
    ivec2 size = textureSize(tex, 0);
    vec2 p = st * vec2(size) - 0.5;
    vec2 i = floor(p);
    vec2 t = p - i;
    vec2 t2 = t * t;
    vec2 t3 = t2 * t;
    vec2 w0 = -0.5 * t3 + t2 - 0.5 * t;
    vec2 w1 = 1.5 * t3 - 2.5 * t2 + 1.0;
    vec2 w2 = -1.5 * t3 + 2.0 * t2 + 0.5 * t;
    vec2 w3 = 0.5 * t3 - 0.5 * t2;
    float wx[4] = float[4](w0.x, w1.x, w2.x, w3.x);
    float wy[4] = float[4](w0.y, w1.y, w2.y, w3.y);
    ivec2 base = ivec2(i) - 1;
    ivec2 hi = size - 1;
    vec4 acc = vec4(0.0);
    for (int y = 0; y < 4; y++) {
        vec4 row = vec4(0.0);
        for (int x = 0; x < 4; x++) {
            ivec2 q = clamp(base + ivec2(x, y), ivec2(0), hi);
            row += wx[x] * texelFetch(tex, q, 0);
        }
        acc += wy[y] * row;
    }
    return clamp(acc, 0.0, 1.0);
}
#endif

// LANCZOS: Lanczos-3 through 6x6 texels (upscaling; the separable scaler in scale.frag is the
// cheaper two-pass form of the same filter for the output stage).
#ifdef LANCZOS
float lanczos3(float x) {
    x = abs(x);
    if (x < 1e-5) return 1.0;
    if (x >= 3.0) return 0.0;
    float px = 3.14159265 * x;
    return 3.0 * sin(px) * sin(px / 3.0) / (px * px);
}

vec4 sample_lanczos(sampler2D tex, vec2 st) {
    ivec2 size = textureSize(tex, 0);
    vec2 p = st * vec2(size) - 0.5;
    vec2 i = floor(p);
    vec2 t = p - i;
    ivec2 base = ivec2(i) - 2;
    ivec2 hi = size - 1;
    vec4 acc = vec4(0.0);
    float wsum = 0.0;
    for (int y = 0; y < 6; y++) {
        float wy = lanczos3(float(y - 2) - t.y);
        for (int x = 0; x < 6; x++) {
            float w = wy * lanczos3(float(x - 2) - t.x);
            acc += w * texelFetch(tex, clamp(base + ivec2(x, y), ivec2(0), hi), 0);
            wsum += w;
        }
    }
    return clamp(acc / wsum, 0.0, 1.0);
}
#endif

vec3 fetch(sampler2D tex, vec2 cover) {
    vec2 st = source_coord(cover);
#if defined(BICUBIC)
    return sample_bicubic(tex, st).rgb * inside(cover);
#elif defined(LANCZOS)
    return sample_lanczos(tex, st).rgb * inside(cover);
#else
    return texture(tex, st).rgb * inside(cover);
#endif
}

void main() {
    vec3 c = fetch(cur_tex, cur_cover);
    if (mix_w < 1.0) {
        c = mix(fetch(prev_tex, prev_cover), c, mix_w);
    }
    c = (c + brightness - 0.5) * contrast + 0.5;
    float luma = dot(c, vec3(0.2126, 0.7152, 0.0722));
    c = mix(vec3(luma), c, saturation);
    frag = vec4(clamp(c, 0.0, 1.0), 1.0);
}

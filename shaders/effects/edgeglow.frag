#version 330 core
// @effect Edge glow: Sobel edges of the brightness, coloured and added over a dimmed image.
// @param strength  1.5  0 4 | glow brightness
// @param threshold 0.1  0 1 | edges weaker than this do not glow
// @param dim       0.3  0 1 | darkens the image under the glow
// @param hue       0.55 0 1 | glow colour
uniform sampler2D scene;
uniform float strength;
uniform float threshold;
uniform float dim;
uniform float hue;

in vec2 uv;
out vec4 frag;

float luma(ivec2 p, ivec2 hi) {
    return dot(texelFetch(scene, clamp(p, ivec2(0), hi), 0).rgb, vec3(0.2126, 0.7152, 0.0722));
}

void main() {
    ivec2 p = ivec2(gl_FragCoord.xy);
    ivec2 hi = textureSize(scene, 0) - 1;
    float tl = luma(p + ivec2(-1, 1), hi), t = luma(p + ivec2(0, 1), hi);
    float tr = luma(p + ivec2(1, 1), hi), l = luma(p + ivec2(-1, 0), hi);
    float r = luma(p + ivec2(1, 0), hi), bl = luma(p + ivec2(-1, -1), hi);
    float b = luma(p + ivec2(0, -1), hi), br = luma(p + ivec2(1, -1), hi);
    float gx = (tr + 2.0 * r + br) - (tl + 2.0 * l + bl);
    float gy = (tl + 2.0 * t + tr) - (bl + 2.0 * b + br);
    float e = max(length(vec2(gx, gy)) - threshold, 0.0) * strength;
    vec3 col = 0.5 + 0.5 * cos(6.28318531 * (hue + vec3(0.0, 0.33, 0.67)));
    vec3 c = texelFetch(scene, clamp(p, ivec2(0), hi), 0).rgb;
    frag = vec4(clamp(c * (1.0 - dim) + e * col, 0.0, 1.0), 1.0);
}

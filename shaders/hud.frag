#version 330 core
// HUD text, drawn with the viewport set to the HUD box (an integer multiple of the font texture).
// Blended as src + dst * (1 - src.a): the box dims what is behind it, the text is white.
uniform sampler2D hud_tex;    // R8 coverage, row 0 = top text row, NEAREST filtering

in vec2 uv;
out vec4 frag;

void main() {
    float cov = texture(hud_tex, vec2(uv.x, 1.0 - uv.y)).r;
    frag = vec4(vec3(cov), 1.0 - 0.65 * (1.0 - cov));
}

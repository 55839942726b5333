#version 330 core
// No effect: the composited image unchanged.
uniform sampler2D scene;
in vec2 uv;
out vec4 frag;

void main() {
    frag = vec4(texture(scene, uv).rgb, 1.0);
}

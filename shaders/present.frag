#version 330 core
// Final pass to the output: the effect's image times the master fader.
uniform sampler2D image;
uniform float master;

in vec2 uv;
out vec4 frag;

void main() {
    frag = vec4(texture(image, uv).rgb * master, 1.0);
}

#version 330 core
// @effect Luma displacement: each pixel pushed along a direction by its own brightness.
// @param amount 0.03  0 0.2    | shift at full brightness, fraction of the frame height
// @param angle  0.785 0 6.2832 | direction of the push, radians
// @param kick   0     0 4      | how much the onset envelope strengthens it
uniform sampler2D scene;
uniform vec2 resolution;
uniform float onset_env;
uniform float amount;
uniform float angle;
uniform float kick;

in vec2 uv;
out vec4 frag;

void main() {
    float l = dot(texture(scene, uv).rgb, vec3(0.2126, 0.7152, 0.0722));
    vec2 d = vec2(cos(angle), sin(angle)) * (l - 0.5) * amount * (1.0 + kick * onset_env)
           * vec2(resolution.y / resolution.x, 1.0);
    frag = vec4(texture(scene, uv + d).rgb, 1.0);
}

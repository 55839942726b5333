#version 330 core
// @effect Feedback trails: the effect's own last output, zoomed and turned, fades behind the image.
// @param decay  0.85 0    0.99 | share of the last output kept each frame (0 = no trails)
// @param zoom   1.01 0.9  1.1  | > 1: trails grow outwards, < 1: they fall inwards
// @param rotate 0    -0.1 0.1  | radians the trails turn per frame
uniform sampler2D scene;     // this frame's input
uniform sampler2D feedback;  // this slot's previous output (its own ping-pong buffer)
uniform vec2 resolution;
uniform float decay;
uniform float zoom;
uniform float rotate;

in vec2 uv;
out vec4 frag;

void main() {
    vec3 c = texture(scene, uv).rgb;
    vec2 asp = vec2(resolution.x / resolution.y, 1.0);
    vec2 p = (uv - 0.5) * asp / zoom;
    float cs = cos(rotate);
    float sn = sin(rotate);
    p = vec2(cs * p.x - sn * p.y, sn * p.x + cs * p.y);
    vec3 fb = texture(feedback, p / asp + 0.5).rgb;
    // the 1/255 offset lets 8-bit trails reach black instead of sticking at a low value
    frag = vec4(max(c, fb * decay - 1.0 / 255.0), 1.0);
}

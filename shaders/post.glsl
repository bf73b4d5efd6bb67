#version 330 core
// Living Mosaic: the post-processing program, drawn as one full-screen triangle.
//
// One program, three variants selected by a define, the same passes as the CPU renderer:
//   PASS_BRIGHT   bloom source → light above u_threshold (hue kept) into o_colour, and the
//                 decayed bloom source into o_trail (its next frame)
//   PASS_BLUR     separable Gaussian along u_direction, edges clamped (run twice)
//   PASS_COMPOSE  trail + bilinearly sampled bloom → exposure → tone curve → brightness →
//                 encode into o_colour (RGBA8, read back as BGRA), and the decayed trail into
//                 o_trail (its next frame)

#include "include/look.glsl"

#if defined VERTEX_SHADER

void main()
{
    // the full-screen triangle from gl_VertexID: no vertex buffer
    vec2 p = vec2(float((gl_VertexID << 1) & 2), float(gl_VertexID & 2));
    gl_Position = vec4(p * 2.0 - 1.0, 0.0, 1.0);
}

#elif defined FRAGMENT_SHADER

layout(location = 0) out vec4 o_colour;

#if defined PASS_BRIGHT

uniform sampler2D u_source;     // the bloom source trail, 1/factor of the frame
uniform float u_threshold;
uniform float u_decay;
layout(location = 1) out vec4 o_trail;

void main()
{
    vec3 c = texelFetch(u_source, ivec2(gl_FragCoord.xy), 0).rgb;
    float m = max(c.r, max(c.g, c.b));
    float k = m > u_threshold ? (m - u_threshold) / m : 0.0;
    o_colour = vec4(c * k, 1.0);
    o_trail = vec4(lm_decayed(c, u_decay), 0.0);
}

#elif defined PASS_BLUR

uniform sampler2D u_source;
uniform ivec2 u_direction;      // (1, 0) rows, (0, 1) columns
uniform int u_radius;           // taps: 2 * u_radius + 1, at most LM_MAX_TAPS
uniform float u_weights[LM_MAX_TAPS];

void main()
{
    ivec2 size = textureSize(u_source, 0);
    ivec2 p = ivec2(gl_FragCoord.xy);
    vec3 acc = vec3(0.0);
    for (int t = 0; t <= 2 * u_radius; ++t) {
        ivec2 q = clamp(p + (t - u_radius) * u_direction, ivec2(0), size - 1);
        acc += u_weights[t] * texelFetch(u_source, q, 0).rgb;
    }
    o_colour = vec4(acc, 1.0);
}

#elif defined PASS_COMPOSE

uniform sampler2D u_trail;      // full-size HDR trail
uniform sampler2D u_bloom;      // blurred bloom, GL_LINEAR and GL_CLAMP_TO_EDGE
uniform vec2 u_bloom_scale;     // 1 / (factor * bloom texture size): low pixel centres at (j + 0.5) * factor
uniform float u_bloom_strength;
uniform float u_exposure;
uniform vec2 u_tone_num;        // a, b
uniform vec3 u_tone_den;        // c, d, e
uniform float u_brightness;     // master brightness; 0 in blackout
uniform float u_decay;
layout(location = 1) out vec4 o_trail;

void main()
{
    vec3 light = texelFetch(u_trail, ivec2(gl_FragCoord.xy), 0).rgb;
    vec3 bloom = texture(u_bloom, gl_FragCoord.xy * u_bloom_scale).rgb;
    vec3 t = lm_tone((light + u_bloom_strength * bloom) * u_exposure, u_tone_num, u_tone_den);
    o_colour = vec4(lm_encode(t * u_brightness), 1.0);
    o_trail = vec4(lm_decayed(light, u_decay), 0.0);
}

#else
#error "post.glsl: define one of PASS_BRIGHT, PASS_BLUR, PASS_COMPOSE"
#endif

#endif

#version 330 core
// Living Mosaic: particles → additive light in an HDR trail buffer (RGBA16F or RGBA32F).
//
// Drawn as points 2·u_foot pixels wide (GL_PROGRAM_POINT_SIZE enabled) with
// glBlendFunc(GL_ONE, GL_ONE): a point covers the (2·u_foot)² pixels around its centre, and the
// tent weight below gives each the weight of the CPU splat, (1 − |d|/foot)/foot per axis,
// summing to one (u_foot = 1: the bilinear splat; plan.splat_footprint sets it from the render
// size, so a particle covers the same share of the picture at any size). Drawn twice per
// frame, like the CPU splat: into the full-size trail and, with u_gain divided by factor² and
// u_foot = 1, into the 1/factor bloom source.
//
// Clip space: x = a_position.x * u_scale.x + u_offset.x, y likewise, with world y = 0 at
// clip y = -1, so glReadPixels (rows from the bottom) hands back rows top first, as the CPU
// frame has them.

#if defined VERTEX_SHADER

in vec2 a_position;     // world units: x in [0, aspect), y in [0, 1)
in vec2 a_velocity;     // world units per second
in float a_energy;      // 0 calm .. ~1 excited
in float a_species;     // species index, as a float attribute

uniform vec2 u_scale;           // world → clip
uniform vec2 u_offset;
uniform vec3 u_colours[LM_MAX_SPECIES];   // linear, warmth and species gain applied (kernels.species_colours)
uniform int u_species_count;
uniform float u_gain;           // plan.particle_gain (÷ factor² for the bloom source)
uniform float u_energy_gain;
uniform float u_speed_gain;
uniform float u_foot;           // plan.splat_footprint (1 for the bloom source)

out vec3 v_light;

void main()
{
    int s = int(a_species);
    float speed = length(a_velocity);
    bool ok = s >= 0 && s < u_species_count
        && !any(isnan(vec4(a_position, a_energy, speed)))
        && !any(isinf(vec4(a_position, a_energy, speed)));
    float light = u_gain * (1.0 + u_energy_gain * clamp(a_energy, 0.0, 8.0)
                                + u_speed_gain * min(speed, 8.0));
    v_light = ok ? u_colours[clamp(s, 0, LM_MAX_SPECIES - 1)] * light : vec3(0.0);
    // a broken particle is moved outside the clip volume: nothing is drawn for it
    gl_Position = ok ? vec4(a_position * u_scale + u_offset, 0.0, 1.0) : vec4(2.0, 2.0, 2.0, 1.0);
    gl_PointSize = 2.0 * u_foot;
}

#elif defined FRAGMENT_SHADER

in vec3 v_light;

uniform float u_foot;

layout(location = 0) out vec4 o_light;

void main()
{
    // distance of this pixel's centre from the point's centre, in units of u_foot pixels (0..1
    // on each axis)
    vec2 d = abs(gl_PointCoord * 2.0 - 1.0);
    vec2 tent = max(1.0 - d, 0.0);
    o_light = vec4(v_light * (tent.x * tent.y) / (u_foot * u_foot), 0.0);
}

#endif

// The look shared by the Living Mosaic programs: tone curve and display encoding.
// Mirrors installation/render/plan.py and kernels.py; the constants arrive as #defines from
// shader_source.look_defines(), so Python stays their one source.

// t = v (a v + b) / (v (c v + d) + e): the ACES fit or Reinhard, per u_tone_* uniforms.
vec3 lm_tone(vec3 v, vec2 num, vec3 den)
{
    v = max(v, vec3(0.0));
    return min(v * (num.x * v + num.y) / (v * (den.x * v + den.y) + den.z), vec3(1.0));
}

// Display-linear 0..1 → display value 0..1: sRGB's linear toe, then a sqrt fit of sRGB.
vec3 lm_encode(vec3 t)
{
    vec3 curve = LM_ENCODE_A * sqrt(t) + LM_ENCODE_B * t + LM_ENCODE_C;
    return mix(curve, LM_ENCODE_TOE * t, vec3(lessThan(t, vec3(LM_ENCODE_KNEE))));
}

// Decayed trail light below LM_FLUSH is dropped, as on the CPU, so trails end in true black.
vec3 lm_decayed(vec3 v, float decay)
{
    vec3 d = v * decay;
    return mix(d, vec3(0.0), vec3(lessThan(d, vec3(LM_FLUSH))));
}

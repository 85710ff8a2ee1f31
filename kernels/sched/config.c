/* kernels/sched/config.c: scheduler configurations: names, class defaults, and from_config. */
#include "kernels/sched/internal.h"

#include <string.h>

static const char *const s_beta_names[DQ_BETA_COUNT] = {"linear", "scaled_linear",
                                                        "squaredcos_cap_v2"};
static const char *const s_prediction_names[DQ_PREDICTION_COUNT] = {"epsilon", "v_prediction"};
static const char *const s_spacing_names[DQ_SPACING_COUNT] = {"linspace", "leading", "trailing"};

static int s_lookup(const char *const *names, int count, const char *name) {
    if (!name) return -1;
    for (int i = 0; i < count; i++)
        if (strcmp(names[i], name) == 0) return i;
    return -1;
}

int dq_scheduler_from_class(const char *class_name, const dq_sched_config_t *cfg) {
    for (int k = DQ_SCHED_MODEL + 1; k < DQ_SCHED_COUNT; k++) {
        const char *cls = dq_scheduler_diffusers_class((dq_scheduler_t) k);
        if (!class_name || !cls || strcmp(cls, class_name) != 0) continue;
        if (k == DQ_SCHED_DPMPP_2M || k == DQ_SCHED_DPMPP_2M_KARRAS)
            return cfg && cfg->use_karras_sigmas ? DQ_SCHED_DPMPP_2M_KARRAS : DQ_SCHED_DPMPP_2M;
        return k;
    }
    return -1;
}
int dq_beta_schedule_parse(const char *name) {
    return s_lookup(s_beta_names, DQ_BETA_COUNT, name);
}
int dq_prediction_type_parse(const char *name) {
    return s_lookup(s_prediction_names, DQ_PREDICTION_COUNT, name);
}
int dq_timestep_spacing_parse(const char *name) {
    return s_lookup(s_spacing_names, DQ_SPACING_COUNT, name);
}
const char *dq_timestep_spacing_name(dq_timestep_spacing_t spacing) {
    return (unsigned)spacing < DQ_SPACING_COUNT ? s_spacing_names[spacing] : "?";
}

void dq_sched_config_init(dq_sched_config_t *cfg) {
    memset(cfg, 0, sizeof(*cfg));
}

void dq_sched_config_sd15(dq_sched_config_t *cfg) {
    dq_sched_config_init(cfg);
    cfg->num_train_timesteps = 1000;
    cfg->beta_start = 0.00085;
    cfg->beta_end = 0.012;
    cfg->beta_schedule = DQ_BETA_SCALED_LINEAR;
    cfg->prediction_type = DQ_PREDICTION_EPSILON;
    cfg->timestep_spacing = DQ_SPACING_LEADING;
    cfg->steps_offset = 1;
    cfg->skip_prk_steps = 1;
    cfg->set_alpha_to_one = 0;
    cfg->clip_sample = 0;
    cfg->has = DQ_SCHED_HAS_NUM_TRAIN_TIMESTEPS | DQ_SCHED_HAS_BETA_START | DQ_SCHED_HAS_BETA_END |
               DQ_SCHED_HAS_BETA_SCHEDULE | DQ_SCHED_HAS_PREDICTION_TYPE |
               DQ_SCHED_HAS_TIMESTEP_SPACING | DQ_SCHED_HAS_STEPS_OFFSET |
               DQ_SCHED_HAS_SKIP_PRK_STEPS | DQ_SCHED_HAS_SET_ALPHA_TO_ONE |
               DQ_SCHED_HAS_CLIP_SAMPLE;
}

/* Keys every class here accepts in __init__. */
#define S_COMMON                                                                                   \
    (DQ_SCHED_HAS_NUM_TRAIN_TIMESTEPS | DQ_SCHED_HAS_BETA_START | DQ_SCHED_HAS_BETA_END |          \
     DQ_SCHED_HAS_BETA_SCHEDULE | DQ_SCHED_HAS_PREDICTION_TYPE | DQ_SCHED_HAS_TIMESTEP_SPACING |   \
     DQ_SCHED_HAS_STEPS_OFFSET)

/* The __init__ defaults of each class in diffusers 0.42.1, and which keys it accepts. */
static void s_class_defaults(dq_scheduler_t kind, dq_sched_config_t *c, unsigned *accepts) {
    dq_sched_config_init(c);
    c->num_train_timesteps = 1000;
    c->beta_start = 0.0001;
    c->beta_end = 0.02;
    c->beta_schedule = DQ_BETA_LINEAR;
    c->prediction_type = DQ_PREDICTION_EPSILON;
    c->timestep_spacing = DQ_SPACING_LINSPACE; /* Euler, Euler a, LMS, DPM */
    c->steps_offset = 0;
    c->clip_sample_range = 1.0;
    c->solver_order = 2;
    c->lower_order_final = 1;
    *accepts = S_COMMON;
    switch (kind) {
    case DQ_SCHED_PNDM:
        c->timestep_spacing = DQ_SPACING_LEADING;
        *accepts |= DQ_SCHED_HAS_SKIP_PRK_STEPS | DQ_SCHED_HAS_SET_ALPHA_TO_ONE;
        break;
    case DQ_SCHED_DDIM:
        c->timestep_spacing = DQ_SPACING_LEADING;
        c->clip_sample = 1;
        c->set_alpha_to_one = 1;
        *accepts |= DQ_SCHED_HAS_CLIP_SAMPLE | DQ_SCHED_HAS_SET_ALPHA_TO_ONE |
                    DQ_SCHED_HAS_CLIP_SAMPLE_RANGE;
        break;
    case DQ_SCHED_EULER:
    case DQ_SCHED_LMS:
        *accepts |= DQ_SCHED_HAS_USE_KARRAS_SIGMAS;
        break;
    case DQ_SCHED_EULER_A:
        break;
    case DQ_SCHED_DPMPP_2M:
    case DQ_SCHED_DPMPP_2M_KARRAS:
        *accepts |= DQ_SCHED_HAS_USE_KARRAS_SIGMAS | DQ_SCHED_HAS_SOLVER_ORDER |
                    DQ_SCHED_HAS_LOWER_ORDER_FINAL | DQ_SCHED_HAS_EULER_AT_FINAL;
        break;
    default:
        break;
    }
}

void dq_sched_config_for(dq_scheduler_t kind, const dq_sched_config_t *model,
                         dq_sched_config_t *out) {
    unsigned accepts;
    s_class_defaults(kind, out, &accepts);
    unsigned carry = model->has & accepts;
#define S_CARRY(bit, field)                                                                        \
    if (carry & (bit)) out->field = model->field
    S_CARRY(DQ_SCHED_HAS_NUM_TRAIN_TIMESTEPS, num_train_timesteps);
    S_CARRY(DQ_SCHED_HAS_BETA_START, beta_start);
    S_CARRY(DQ_SCHED_HAS_BETA_END, beta_end);
    S_CARRY(DQ_SCHED_HAS_BETA_SCHEDULE, beta_schedule);
    S_CARRY(DQ_SCHED_HAS_PREDICTION_TYPE, prediction_type);
    S_CARRY(DQ_SCHED_HAS_TIMESTEP_SPACING, timestep_spacing);
    S_CARRY(DQ_SCHED_HAS_STEPS_OFFSET, steps_offset);
    S_CARRY(DQ_SCHED_HAS_SKIP_PRK_STEPS, skip_prk_steps);
    S_CARRY(DQ_SCHED_HAS_SET_ALPHA_TO_ONE, set_alpha_to_one);
    S_CARRY(DQ_SCHED_HAS_CLIP_SAMPLE, clip_sample);
    S_CARRY(DQ_SCHED_HAS_CLIP_SAMPLE_RANGE, clip_sample_range);
    S_CARRY(DQ_SCHED_HAS_USE_KARRAS_SIGMAS, use_karras_sigmas);
    S_CARRY(DQ_SCHED_HAS_SOLVER_ORDER, solver_order);
    S_CARRY(DQ_SCHED_HAS_LOWER_ORDER_FINAL, lower_order_final);
    S_CARRY(DQ_SCHED_HAS_EULER_AT_FINAL, euler_at_final);
#undef S_CARRY
    out->has = carry;
    /* The job's name chooses the Karras variant as a from_config keyword, which wins over the
     * file: dpmpp_2m_karras is from_config(cfg, use_karras_sigmas=True), dpmpp_2m the same with
     * False, so that each name means one schedule whatever the model file says. */
    if (kind == DQ_SCHED_DPMPP_2M_KARRAS) out->use_karras_sigmas = 1;
    if (kind == DQ_SCHED_DPMPP_2M) out->use_karras_sigmas = 0;
}

/* tests/unit/test_samplers.c: the samplers reproduce diffusers' schedules and trajectories. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/rng.h"
#include "kernels/sched/sampler.h"

#define TOL_SCHEDULE 1e-6 /* relative L2 of timesteps / sigmas */
#define TOL_STEP     1e-5 /* relative L2 of the latents after each step */

static FILE *s_open_fixture(const char *name) {
    const char *top = getenv("top_srcdir");
    char path[4096];
    snprintf(path, sizeof(path), "%s/tests/fixtures/samplers/%s", top ? top : ".", name);
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("cannot open fixture %s", path);
    return f;
}

/* The fixture's named model configurations (see tests/reference/gen_samplers.py). */
static void s_model_config(const char *name, dq_sched_config_t *cfg) {
    dq_sched_config_sd15(cfg);
    if (strcmp(name, "trailing") == 0) {
        cfg->timestep_spacing = DQ_SPACING_TRAILING;
    } else if (strcmp(name, "linspace") == 0) {
        cfg->timestep_spacing = DQ_SPACING_LINSPACE;
    } else if (strcmp(name, "default") == 0) {
        cfg->has &= ~(unsigned)(DQ_SCHED_HAS_TIMESTEP_SPACING | DQ_SCHED_HAS_PREDICTION_TYPE);
    } else if (strcmp(name, "vpred") == 0) {
        cfg->prediction_type = DQ_PREDICTION_V_PREDICTION;
    } else if (strcmp(name, "karras") == 0) {
        cfg->use_karras_sigmas = 1;
        cfg->has |= DQ_SCHED_HAS_USE_KARRAS_SIGMAS;
    } else if (strcmp(name, "sd15") != 0) {
        fail_msg("unknown fixture config %s", name);
    }
}

static float s_bits_to_float(uint32_t b) {
    float f;
    memcpy(&f, &b, sizeof(f));
    return f;
}

/* Reads up to max hex f32 values after a tag ("t ", "s ", "x <i> ") into out; returns count. */
static int s_read_floats(char *p, float *out, int max) {
    int count = 0;
    while (count < max) {
        char *end;
        unsigned long v = strtoul(p, &end, 16);
        if (end == p) break;
        out[count++] = s_bits_to_float((uint32_t)v);
        p = end;
    }
    return count;
}

static double s_rel_l2(const float *got, const float *want, int n) {
    double num = 0, den = 0;
    for (int i = 0; i < n; i++) {
        double d = (double)got[i] - want[i];
        num += d * d;
        den += (double)want[i] * want[i];
    }
    if (den == 0) return sqrt(num);
    return sqrt(num / den);
}

static char *s_getline(FILE *f, char *buf, size_t size, int *lineno) {
    while (fgets(buf, (int)size, f)) {
        (*lineno)++;
        if (buf[0] != '#' && buf[0] != '\n') return buf;
    }
    return NULL;
}

static void test_schedules_match_diffusers(void **state) {
    (void)state;
    FILE *f = s_open_fixture("schedules.txt");
    static char line[65536];
    float want[1100];
    int lineno = 0, records = 0, exact = 0, values = 0;
    double worst = 0;
    while (s_getline(f, line, sizeof(line), &lineno)) {
        char cname[32], kname[32], ins_hex[16];
        int steps, ncalls;
        if (sscanf(line, "sched %31s %31s %d %d %15s", cname, kname, &steps, &ncalls, ins_hex) != 5)
            fail_msg("schedules.txt:%d: bad record", lineno);
        dq_sched_config_t cfg;
        s_model_config(cname, &cfg);
        int kind = dq_scheduler_parse(kname);
        assert_true(kind >= 0);
        char err[256] = "";
        dq_sampler_t *s = dq_sampler_new((dq_scheduler_t)kind, &cfg, steps, 1, err, sizeof(err));
        if (!s) fail_msg("schedules.txt:%d: %s", lineno, err);
        if (dq_sampler_num_calls(s) != ncalls)
            fail_msg("schedules.txt:%d: %s %s %d: %d calls, want %d", lineno, cname, kname, steps,
                     dq_sampler_num_calls(s), ncalls);
        float ins_want = s_bits_to_float((uint32_t)strtoul(ins_hex, NULL, 16));
        float ins = dq_sampler_init_noise_sigma(s);
        if (fabs((double)ins - ins_want) > TOL_SCHEDULE * fabs((double)ins_want))
            fail_msg("schedules.txt:%d: init_noise_sigma %.9g want %.9g", lineno, ins, ins_want);
        /* timesteps */
        assert_non_null(s_getline(f, line, sizeof(line), &lineno));
        assert_true(line[0] == 't');
        int nt = s_read_floats(line + 2, want, 1100);
        assert_int_equal(nt, ncalls);
        float got[1100];
        for (int i = 0; i < nt; i++) {
            got[i] = dq_sampler_timestep(s, i);
            exact += memcmp(&got[i], &want[i], sizeof(float)) == 0;
        }
        values += nt;
        double e = s_rel_l2(got, want, nt);
        if (e > worst) worst = e;
        if (e > TOL_SCHEDULE)
            fail_msg("schedules.txt:%d: %s %s %d timesteps rel L2 %.3g (first %.9g want %.9g)",
                     lineno, cname, kname, steps, e, got[0], want[0]);
        /* sigmas */
        assert_non_null(s_getline(f, line, sizeof(line), &lineno));
        assert_true(line[0] == 's');
        int count;
        const float *sig = dq_sampler_sigmas(s, &count);
        if (line[2] == '-') {
            assert_null(sig);
        } else {
            int ns = s_read_floats(line + 2, want, 1100);
            assert_non_null(sig);
            assert_int_equal(count, ns);
            for (int i = 0; i < ns; i++)
                exact += memcmp(&sig[i], &want[i], sizeof(float)) == 0;
            values += ns;
            e = s_rel_l2(sig, want, ns);
            if (e > worst) worst = e;
            if (e > TOL_SCHEDULE)
                fail_msg("schedules.txt:%d: %s %s %d sigmas rel L2 %.3g", lineno, cname, kname,
                         steps, e);
        }
        dq_sampler_destroy(&s);
        records++;
    }
    fclose(f);
    print_message("# %d schedules, %d/%d values bit-exact, worst rel L2 %.3g\n", records, exact,
                  values, worst);
    assert_true(records >= 200);
}

/* Replays one trajectory record: the loop of the header comment of kernels/sched/sampler.h with
 * the fake UNet model_output = 0.5 * x_in + F_i. */
static void s_replay(FILE *f, char *line, size_t size, int *lineno, double *worst, int *exact,
                     int *values) {
    char cname[32], kname[32];
    int steps, seed, n, n_gen;
    if (sscanf(line, "traj %31s %31s %d %d %d %d", cname, kname, &steps, &seed, &n, &n_gen) != 6)
        fail_msg("trajectories.txt:%d: bad record", *lineno);
    int head = *lineno;
    dq_sched_config_t cfg;
    s_model_config(cname, &cfg);
    int kind = dq_scheduler_parse(kname);
    assert_true(kind >= 0);
    char err[256] = "";
    dq_sampler_t *s =
        dq_sampler_new((dq_scheduler_t)kind, &cfg, steps, (size_t)n, err, sizeof(err));
    if (!s) fail_msg("trajectories.txt:%d: %s", head, err);
    dq_rng_t *rngs[8];
    assert_true(n_gen >= 1 && n_gen <= 8);
    float *x = malloc((size_t)n * sizeof(float));
    float *x_in = malloc((size_t)n * sizeof(float));
    float *mo = malloc((size_t)n * sizeof(float));
    float *want = malloc((size_t)n * sizeof(float));
    assert_true(x && x_in && mo && want);
    int per = n / n_gen;
    for (int k = 0; k < n_gen; k++) {
        rngs[k] = dq_rng_new((uint64_t)(seed + (n_gen > 1 ? k : 0)));
        assert_non_null(rngs[k]);
        dq_rng_randn(rngs[k], x + k * per, (size_t)per);
    }
    float ins = dq_sampler_init_noise_sigma(s);
    for (int k = 0; k < n; k++)
        x[k] = x[k] * ins;
    dq_rng_t *gf = dq_rng_new(777);
    assert_non_null(gf);
    int ncalls = dq_sampler_num_calls(s);
    for (int i = 0; i < ncalls; i++) {
        dq_sampler_scale_model_input(s, i, x, x_in, (size_t)n);
        dq_rng_randn(gf, mo, (size_t)n);
        for (int k = 0; k < n; k++)
            mo[k] = 0.5f * x_in[k] + mo[k]; /* exact product */
        if (dq_sampler_step(s, i, mo, x, (size_t)n, rngs, (size_t)n_gen, err, sizeof(err)))
            fail_msg("trajectories.txt:%d: %s", head, err);
        assert_non_null(s_getline(f, line, size, lineno));
        int step;
        char *p = line;
        if (sscanf(line, "x %d", &step) != 1 || step != i)
            fail_msg("trajectories.txt:%d: expected step %d", *lineno, i);
        p = strchr(p + 2, ' ');
        assert_non_null(p);
        assert_int_equal(s_read_floats(p, want, n), n);
        for (int k = 0; k < n; k++)
            *exact += memcmp(&x[k], &want[k], sizeof(float)) == 0;
        *values += n;
        double e = s_rel_l2(x, want, n);
        if (e > *worst) *worst = e;
        if (!(e <= TOL_STEP))
            fail_msg("trajectories.txt:%d: %s %s %d steps: step %d rel L2 %.3g", *lineno, cname,
                     kname, steps, i, e);
    }
    for (int k = 0; k < n_gen; k++)
        dq_rng_destroy(&rngs[k]);
    dq_rng_destroy(&gf);
    free(x);
    free(x_in);
    free(mo);
    free(want);
    dq_sampler_destroy(&s);
}

static void test_trajectories_match_diffusers(void **state) {
    (void)state;
    FILE *f = s_open_fixture("trajectories.txt");
    static char line[65536];
    int lineno = 0, records = 0, exact = 0, values = 0;
    double worst = 0;
    while (s_getline(f, line, sizeof(line), &lineno)) {
        s_replay(f, line, sizeof(line), &lineno, &worst, &exact, &values);
        records++;
    }
    fclose(f);
    print_message("# %d trajectories, %d/%d values bit-exact, worst rel L2 %.3g\n", records, exact,
                  values, worst);
    assert_true(records >= 28);
}

static void test_names(void **state) {
    (void)state;
    /* Names live in common/job.c; the classes a model's scheduler_config.json may name map to
     * them (DPM-Solver by its use_karras_sigmas). */
    dq_sched_config_t karras;
    dq_sched_config_sd15(&karras);
    karras.use_karras_sigmas = 1;
    assert_int_equal(dq_scheduler_from_class("PNDMScheduler", NULL), DQ_SCHED_PNDM);
    assert_int_equal(dq_scheduler_from_class("EulerAncestralDiscreteScheduler", NULL),
                     DQ_SCHED_EULER_A);
    assert_int_equal(dq_scheduler_from_class("DPMSolverMultistepScheduler", NULL),
                     DQ_SCHED_DPMPP_2M);
    assert_int_equal(dq_scheduler_from_class("DPMSolverMultistepScheduler", &karras),
                     DQ_SCHED_DPMPP_2M_KARRAS);
    assert_int_equal(dq_scheduler_from_class("DDPMScheduler", NULL), -1);
    assert_int_equal(dq_scheduler_from_class(NULL, NULL), -1);
    assert_int_equal(dq_timestep_spacing_parse("trailing"), DQ_SPACING_TRAILING);
    assert_int_equal(dq_beta_schedule_parse("scaled_linear"), DQ_BETA_SCALED_LINEAR);
    assert_int_equal(dq_prediction_type_parse("v_prediction"), DQ_PREDICTION_V_PREDICTION);
    assert_int_equal(dq_prediction_type_parse("sample"), -1);
}

/* from_config carries the keys the file had and the target accepts; the rest are defaults. */
static void test_config_carry(void **state) {
    (void)state;
    dq_sched_config_t model, out;
    dq_sched_config_sd15(&model);
    dq_sched_config_for(DQ_SCHED_DDIM, &model, &out);
    assert_int_equal(out.set_alpha_to_one, 0); /* DDIM's default is true; the file says false */
    assert_int_equal(out.clip_sample, 0);
    assert_int_equal(out.steps_offset, 1);
    dq_sched_config_for(DQ_SCHED_EULER, &model, &out);
    assert_int_equal(out.timestep_spacing, DQ_SPACING_LEADING);
    model.has &= ~(unsigned)DQ_SCHED_HAS_TIMESTEP_SPACING; /* the 2022 file */
    dq_sched_config_for(DQ_SCHED_EULER, &model, &out);
    assert_int_equal(out.timestep_spacing, DQ_SPACING_LINSPACE);
    dq_sched_config_for(DQ_SCHED_PNDM, &model, &out);
    assert_int_equal(out.timestep_spacing, DQ_SPACING_LEADING);
    model.use_karras_sigmas = 1;
    model.has |= DQ_SCHED_HAS_USE_KARRAS_SIGMAS;
    dq_sched_config_for(DQ_SCHED_DPMPP_2M, &model, &out);
    assert_int_equal(out.use_karras_sigmas, 0);
    dq_sched_config_for(DQ_SCHED_EULER_A, &model, &out);
    assert_int_equal(out.has & DQ_SCHED_HAS_USE_KARRAS_SIGMAS, 0);
    dq_sched_config_init(&model);
    dq_sched_config_for(DQ_SCHED_DPMPP_2M_KARRAS, &model, &out);
    assert_int_equal(out.use_karras_sigmas, 1);
    assert_int_equal(out.solver_order, 2);
    assert_true(out.beta_start == 0.0001);
}

static void test_errors(void **state) {
    (void)state;
    dq_sched_config_t cfg;
    dq_sched_config_sd15(&cfg);
    char err[256] = "";
    assert_null(dq_sampler_new(DQ_SCHED_EULER, &cfg, 0, 16, err, sizeof(err)));
    assert_non_null(strstr(err, "steps 0"));
    assert_null(dq_sampler_new(DQ_SCHED_EULER, &cfg, 1001, 16, err, sizeof(err)));
    assert_null(dq_sampler_new(DQ_SCHED_EULER, &cfg, 10, 0, err, sizeof(err)));
    assert_null(dq_sampler_new(DQ_SCHED_COUNT, &cfg, 10, 16, NULL, 0));
    assert_null(dq_sampler_new(DQ_SCHED_MODEL, &cfg, 10, 16, NULL, 0));
    cfg.skip_prk_steps = 0;
    assert_null(dq_sampler_new(DQ_SCHED_PNDM, &cfg, 10, 16, err, sizeof(err)));
    assert_non_null(strstr(err, "skip_prk_steps"));
    dq_sched_config_sd15(&cfg);
    cfg.beta_start = -0.1;
    assert_null(dq_sampler_new(DQ_SCHED_EULER, &cfg, 10, 16, err, sizeof(err)));
    assert_non_null(strstr(err, "beta_start"));
    dq_sched_config_sd15(&cfg);
    cfg.beta_end = 0.0001; /* below beta_start */
    assert_null(dq_sampler_new(DQ_SCHED_DDIM, &cfg, 10, 16, err, sizeof(err)));
    dq_sched_config_sd15(&cfg);
    cfg.solver_order = 3;
    cfg.has |= DQ_SCHED_HAS_SOLVER_ORDER;
    assert_null(dq_sampler_new(DQ_SCHED_DPMPP_2M, &cfg, 10, 16, err, sizeof(err)));
    assert_non_null(strstr(err, "solver_order 3"));

    dq_sched_config_sd15(&cfg);
    dq_sampler_t *s = dq_sampler_new(DQ_SCHED_EULER_A, &cfg, 4, 16, err, sizeof(err));
    assert_non_null(s);
    float x[16] = {0}, mo[16] = {0};
    assert_int_equal(dq_sampler_step(s, 1, mo, x, 16, NULL, 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "out of order"));
    assert_int_equal(dq_sampler_step(s, 0, mo, x, 16, NULL, 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "generators"));
    dq_rng_t *r = dq_rng_new(1);
    assert_non_null(r);
    assert_int_equal(dq_sampler_step(s, 0, mo, x, 8, &r, 1, err, sizeof(err)), -1);
    assert_int_equal(dq_sampler_step(s, 0, mo, x, 16, &r, 1, err, sizeof(err)), 0);
    dq_rng_destroy(&r);
    dq_sampler_destroy(&s);
    assert_null(s);
    dq_sampler_destroy(&s);
}

/* A batch of two requests, each with its own generator, gives each request exactly the latents
 * it gets alone: batching never changes a picture. */
static void test_euler_a_batch_independent(void **state) {
    (void)state;
    enum { PER = 24, STEPS = 6 };
    dq_sched_config_t cfg;
    dq_sched_config_sd15(&cfg);
    char err[256];
    float batch[2 * PER], alone[2][PER], mo[2 * PER];
    dq_rng_t *rb[2] = {dq_rng_new(100), dq_rng_new(200)};
    assert_true(rb[0] && rb[1]);
    dq_sampler_t *sb = dq_sampler_new(DQ_SCHED_EULER_A, &cfg, STEPS, 2 * PER, err, sizeof(err));
    assert_non_null(sb);
    for (int k = 0; k < 2; k++)
        dq_rng_randn(rb[k], batch + k * PER, PER);
    for (int i = 0; i < STEPS; i++) {
        for (int k = 0; k < 2 * PER; k++)
            mo[k] = 0.5f * batch[k];
        assert_int_equal(dq_sampler_step(sb, i, mo, batch, 2 * PER, rb, 2, err, sizeof(err)), 0);
    }
    for (int r = 0; r < 2; r++) {
        dq_rng_t *g = dq_rng_new(r == 0 ? 100 : 200);
        dq_sampler_t *s = dq_sampler_new(DQ_SCHED_EULER_A, &cfg, STEPS, PER, err, sizeof(err));
        assert_true(g && s);
        dq_rng_randn(g, alone[r], PER);
        for (int i = 0; i < STEPS; i++) {
            for (int k = 0; k < PER; k++)
                mo[k] = 0.5f * alone[r][k];
            assert_int_equal(dq_sampler_step(s, i, mo, alone[r], PER, &g, 1, err, sizeof(err)), 0);
        }
        assert_memory_equal(alone[r], batch + r * PER, sizeof(alone[r]));
        dq_sampler_destroy(&s);
        dq_rng_destroy(&g);
    }
    dq_rng_destroy(&rb[0]);
    dq_rng_destroy(&rb[1]);
    dq_sampler_destroy(&sb);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_config_carry),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_schedules_match_diffusers),
        cmocka_unit_test(test_trajectories_match_diffusers),
        cmocka_unit_test(test_euler_a_batch_independent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

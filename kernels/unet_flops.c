/* kernels/unet_flops.c: the floating-point operation count of one UNet forward, walking the
 * same structure as kernels/unet.c (for benchmarks: throughput against the machine's sgemm). */
#include <stdint.h>

#include "kernels/unet.h"

/* 2 * multiply-adds of a KxK convolution producing [n, co, ho, wo] from ci channels. */
static double s_conv(double n, double co, double ci, double k, double hw) {
    return 2.0 * n * co * ci * k * k * hw;
}
static double s_linear(double rows, double in, double out) { return 2.0 * rows * in * out; }

static double s_resnet(double n, double ci, double co, double hw, double temb) {
    double f = s_conv(n, co, ci, 3, hw) + s_conv(n, co, co, 3, hw) + s_linear(n, temb, co);
    if (ci != co) f += s_conv(n, co, ci, 1, hw);
    return f;
}

/* Transformer2DModel with one BasicTransformerBlock: proj_in/out, self- and cross-attention
 * (projections plus QK^T and PV), GEGLU feed-forward (C -> 8C, 4C -> C). */
static double s_transformer(double n, double c, double hw, double l, double d) {
    double t = n * hw;
    double f = 2 * s_linear(t, c, c);                                  // proj_in, proj_out
    f += 4 * s_linear(t, c, c) + 2 * (2.0 * n * hw * hw * c);         // attn1
    f += 2 * s_linear(t, c, c) + 2 * s_linear(n * l, d, c) + 2 * (2.0 * n * hw * l * c); // attn2
    f += s_linear(t, c, 8 * c) + s_linear(t, 4 * c, c);               // ff
    return f;
}

double dq_unet_flops(const dq_unet_config_t *cfg, int n, int h, int w, int ctx_len) {
    const int nb = cfg->n_blocks, L = cfg->layers_per_block;
    const double d = cfg->cross_attention_dim, c0 = cfg->block_out_channels[0], temb = 4 * c0;
    int64_t hs[DQ_MAX_BLOCKS], ws[DQ_MAX_BLOCKS];
    double f = s_linear(n, c0, temb) + s_linear(n, temb, temb); // time embedding
    f += s_conv(n, c0, cfg->in_channels, 3, (double) h * w);    // conv_in
    hs[0] = h, ws[0] = w;
    for (int i = 0; i < nb; i++) {
        double out = cfg->block_out_channels[i], in = i ? cfg->block_out_channels[i - 1] : out;
        double hw = (double) hs[i] * (double) ws[i];
        int attn = cfg->down_block_types[i][0] == 'C'; // CrossAttnDownBlock2D
        for (int j = 0; j < L; j++) {
            f += s_resnet(n, j ? out : in, out, hw, temb);
            if (attn) f += s_transformer(n, out, hw, ctx_len, d);
        }
        if (i + 1 < nb) {
            hs[i + 1] = (hs[i] + 2 * cfg->downsample_padding - 3) / 2 + 1;
            ws[i + 1] = (ws[i] + 2 * cfg->downsample_padding - 3) / 2 + 1;
            f += s_conv(n, out, out, 3, (double) hs[i + 1] * (double) ws[i + 1]);
        }
    }
    double top = cfg->block_out_channels[nb - 1];
    double hw_top = (double) hs[nb - 1] * (double) ws[nb - 1];
    f += 2 * s_resnet(n, top, top, hw_top, temb) + s_transformer(n, top, hw_top, ctx_len, d);
    for (int i = 0; i < nb; i++) {
        int r = nb - 1 - i;
        double out = cfg->block_out_channels[r], prev = cfg->block_out_channels[i ? r + 1 : r];
        double in = cfg->block_out_channels[r > 0 ? r - 1 : 0];
        double hw = (double) hs[r] * (double) ws[r];
        int attn = cfg->up_block_types[i][0] == 'C'; // CrossAttnUpBlock2D
        for (int j = 0; j <= L; j++) {
            f += s_resnet(n, (j ? out : prev) + (j == L ? in : out), out, hw, temb);
            if (attn) f += s_transformer(n, out, hw, ctx_len, d);
        }
        if (r > 0) f += s_conv(n, out, out, 3, (double) hs[r - 1] * (double) ws[r - 1]);
    }
    f += s_conv(n, cfg->out_channels, c0, 3, (double) h * w); // conv_out
    return f;
}

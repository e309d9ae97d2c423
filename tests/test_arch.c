// test_arch.c: the architecture text parser. Every error names the file and the line; valid
// texts give the expected shapes, tensor names and parameter counts (counted by hand the way
// PyTorch counts them); the architectures in assets/models parse.
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model.h"
#include "testutil.h"

static const char *FILE_NAME = "net.arch";

// text must be refused; the message starts "net.arch:LINE: " (or "net.arch: " for line 0)
// and contains `reason`.
static void expect_error(const char *text, int line, const char *reason) {
    char err[EMO_ERRLEN] = "", want[64];
    Net *net = net_parse(text, FILE_NAME, err, sizeof err);
    if (line > 0)
        snprintf(want, sizeof want, "%s:%d: ", FILE_NAME, line);
    else
        snprintf(want, sizeof want, "%s: ", FILE_NAME);
    CHECK(net == NULL, "accepted:\n%s", text);
    CHECK(strncmp(err, want, strlen(want)) == 0 && strstr(err, reason),
          "message '%s', want '%s...%s...' for:\n%s", err, want, reason, text);
    if (getenv("EMOCAM_TEST_VERBOSE")) printf("%s\n", err);
    net_free(net);
}

static Net *expect_ok(const char *text) {
    char err[EMO_ERRLEN] = "";
    Net *net = net_parse(text, FILE_NAME, err, sizeof err);
    CHECK(net != NULL, "refused (%s):\n%s", err, text);
    return net;
}

static void expect_shape(const char *text, Shape out, size_t nparams) {
    Net *net = expect_ok(text);
    if (!net) return;
    CHECK(net->out.c == out.c && net->out.h == out.h && net->out.w == out.w,
          "output %dx%dx%d, want %dx%dx%d for:\n%s", net->out.c, net->out.h, net->out.w, out.c,
          out.h, out.w, text);
    CHECK(net_count_params(net) == nparams, "%zu parameters, want %zu for:\n%s",
          net_count_params(net), nparams, text);
    net_free(net);
}

static void check_tensor(const Net *net, const char *name, int ndim, const int *dims,
                         int is_buffer, int decay) {
    const Tensor *t = net_tensor(net, name);
    CHECK(t != NULL, "no tensor %s", name);
    if (!t) return;
    int same = t->ndim == ndim;
    size_t count = 1;
    for (int d = 0; same && d < ndim; d++) {
        same = t->dims[d] == dims[d];
        count *= (size_t)dims[d];
    }
    CHECK(same && t->count == count, "%s: wrong shape", name);
    CHECK(t->is_buffer == is_buffer && t->decay == decay, "%s: is_buffer %d decay %d", name,
          t->is_buffer, t->decay);
}

static void check_errors(void) {
    const char *in = "input c=3 h=8 w=8\n";
    char text[512];
#define T(body) (snprintf(text, sizeof text, "%s%s", in, body), text)
    // the kind, the keys, the values
    expect_error(T("conv out=4 k=3\nfoo\n"), 3, "unknown layer kind 'foo'");
    expect_error(T("conv out=4 k=3 strid=2\n"), 2, "unknown key 'strid'");
    expect_error(T("relu inplace=1\n"), 2, "unknown key 'inplace'");
    expect_error(T("gap k=2\n"), 2, "unknown key 'k'");
    expect_error(T("flatten dim=1\n"), 2, "unknown key");
    expect_error(T("bn\nbn eps=1e-5 affine=0\n"), 3, "unknown key 'affine'");
    expect_error(T("conv out=4 out=5 k=3\n"), 2, "duplicate key 'out'");
    expect_error(T("conv out=4 k=3 k=3\n"), 2, "duplicate key 'k'");
    expect_error(T("conv out=four k=3\n"), 2, "out=four");
    expect_error(T("conv out=4 k=3x\n"), 2, "k=3x");
    expect_error(T("conv out=2.5 k=3\n"), 2, "out=2.5");
    expect_error(T("conv out=4 k=3 stride=99999999999999999999\n"), 2, "stride=");
    expect_error(T("conv out=4 k= 3\n"), 2, "key=value");
    expect_error(T("dropout p=half\n"), 2, "p=half");
    expect_error(T("bn eps=1e-5x\n"), 2, "eps=");
    // out of range
    expect_error(T("conv out=0 k=3\n"), 2, "out=0");
    expect_error(T("conv out=-4 k=3\n"), 2, "out=-4");
    expect_error(T("conv out=4 k=64\n"), 2, "k=64");
    expect_error(T("conv out=4 k=3 stride=0\n"), 2, "stride=0");
    expect_error(T("conv out=4 k=3 bias=2\n"), 2, "bias=2");
    expect_error(T("conv out=4 k=3 pad=-1\n"), 2, "pad=-1");
    expect_error(T("conv out=4 k=3 groups=0\n"), 2, "groups=0");
    expect_error(T("dropout p=1.5\n"), 2, "p=1.5");
    expect_error(T("dropout p=-0.1\n"), 2, "p=-0.1");
    expect_error(T("dropout2d p=1\n"), 2, "p=1");
    expect_error(T("bn eps=0\n"), 2, "eps=0");
    expect_error(T("bn momentum=2\n"), 2, "momentum=2");
    expect_error(T("bn momentum=nan\n"), 2, "momentum=nan");
    expect_error(T("maxpool k=0\n"), 2, "k=0");
    expect_error(T("cbam r=0\n"), 2, "r=0");
    expect_error(T("cbam k=4\n"), 2, "odd");
    expect_error(T("gap\nlinear out=0\n"), 3, "out=0");
    expect_error("input c=0 h=8 w=8\n", 1, "c=0");
    expect_error("input c=1 h=8 w=99999\n", 1, "w=99999");
    // missing required keys
    expect_error(T("conv k=3\n"), 2, "missing out=");
    expect_error(T("conv out=4\n"), 2, "missing k=");
    expect_error(T("maxpool stride=2\n"), 2, "missing k=");
    expect_error(T("avgpool\n"), 2, "missing k=");
    expect_error(T("gap\nlinear\n"), 3, "missing out=");
    expect_error("input c=1 h=8\nrelu\n", 1, "missing w=");
    expect_error("input\nrelu\n", 1, "missing c=");
    expect_error("input c=1 h=8 w=8 std=0\nrelu\n", 1, "std=0");
    expect_error("input c=1 h=8 w=8 mean=grey\nrelu\n", 1, "mean=grey");
    expect_error("input c=1 h=8 w=8 scale=2\nrelu\n", 1, "unknown key 'scale'");
    // a token that is not key=value
    expect_error(T("conv out=4 k 3\n"), 2, "expected key=value, got 'k'");
    expect_error(T("conv out=4 =3\n"), 2, "expected key=value, got '=3'");
    expect_error(T("conv out=4 k=\n"), 2, "expected key=value, got 'k='");
    // 'input'
    expect_error("conv out=4 k=3\ninput c=3 h=8 w=8\n", 1, "first line must be 'input");
    expect_error("# a comment\n\n   \nrelu\n", 4, "first line must be 'input");
    expect_error(T("relu\ninput c=3 h=8 w=8\n"), 3, "'input' appears twice");
    expect_error(T("input c=3 h=8 w=8\n"), 2, "'input' appears twice");
    expect_error("", 0, "no 'input'");
    expect_error("# only\n# comments\n\n", 0, "no 'input'");
    expect_error("\n\n  \t \n", 0, "no 'input'");
    expect_error(in, 0, "no layers");
    // impossible shapes
    expect_error("input c=1 h=4 w=4\nconv out=2 k=5\n", 2, "does not fit");
    expect_error("input c=1 h=8 w=4\nconv out=2 k=5\n", 2, "does not fit");
    expect_error("input c=1 h=8 w=8\nconv out=2 k=3 pad=3\n", 2, "pad=3");
    expect_error(T("linear out=4\n"), 2, "flat input");
    expect_error(T("conv out=4 k=3\nlinear out=4\n"), 3, "flat input");
    expect_error(T("conv out=4 k=3 groups=2\n"), 2, "groups=2 must divide");   // 3 % 2
    expect_error("input c=4 h=8 w=8\nconv out=6 k=3 groups=4\n", 2, "groups=4 must divide");
    expect_error("input c=2 h=4 w=4\nmaxpool k=5\n", 2, "does not fit");
    expect_error("input c=2 h=4 w=4\nmaxpool k=2 pad=2\n", 2, "pad=2");
    expect_error("input c=2 h=4 w=4\navgpool k=5\n", 2, "does not fit");
    expect_error("input c=2 h=8 w=8\nmaxpool k=2\nmaxpool k=2\nmaxpool k=2\nmaxpool k=2\n", 5,
                 "does not fit");
    expect_error("input c=2 h=6 w=6\nresidual\n  conv out=4 k=3 pad=1\nend\n", 4, "shortcut");
    expect_error("input c=2 h=6 w=6\nresidual\n  conv out=2 k=3\nend\n", 4, "main path gives");
    expect_error(
        "input c=2 h=6 w=6\nresidual\n  conv out=4 k=3 stride=2 pad=1\nshortcut\n"
        "  conv out=4 k=1\nend\n",
        6, "main path gives 4x3x3 but the shortcut gives 4x6x6");
    expect_error("input c=2 h=6 w=6\nresidual\nend\n", 3, "no layers");
    expect_error("input c=2 h=6 w=6\nresidual\nshortcut\n  conv out=2 k=1\nend\n", 5,
                 "no layers");
    // blocks
    expect_error(T("relu\nshortcut\n"), 3, "'shortcut' outside a residual block");
    expect_error(T("relu\nend\n"), 3, "'end' without a block");
    expect_error(T("residual\n  relu\nend\nend\n"), 5, "'end' without a block");
    expect_error(T("residual\n  relu\nshortcut\n  relu\nshortcut\nend\n"), 6, "given twice");
    expect_error(T("residual x=1\n  relu\nend\n"), 2, "unknown key 'x'");
    expect_error(T("residual\n  relu\nshortcut k=1\nend\n"), 4, "unknown key 'k'");
    expect_error(T("residual\n  relu\nend now=1\n"), 4, "unknown key 'now'");
    expect_error(T("conv out=3 k=3 pad=1\nresidual\n  relu\n  conv out=3 k=3 pad=1\n"), 3,
                 "never closed");
    expect_error(T("residual\n  residual\n    relu\n  end\n  relu\n"), 2, "never closed");
    expect_error(T("residual\n  relu\n  residual\n    relu\nend\n"), 2, "never closed");
    expect_error(
        T("residual\n residual\n  residual\n   residual\n    residual\n     relu\n    end\n"
          "   end\n  end\n end\nend\n"),
        6, "nested deeper");
    // a line number after comments and blank lines counts them
    expect_error("# header\n\ninput c=1 h=8 w=8   # trailing comment\n\n# more\nconv out=2\n",
                 6, "missing k=");
    // the file name in the message is the one given, however long
    char *longname = malloc(3001);
    if (longname) {
        memset(longname, 'd', 3000);
        longname[3000] = 0;
        char err[EMO_ERRLEN];
        memset(err, 'x', sizeof err);
        Net *net = net_parse("input c=1 h=8 w=8\nbogus\n", longname, err, sizeof err);
        CHECK(!net && memchr(err, 0, sizeof err) && strncmp(err, longname, 100) == 0,
              "a long file name breaks the message");
        free(longname);
    }
#undef T
}

static void check_valid(void) {
    // shapes and PyTorch's parameter counts
    expect_shape("input c=1 h=48 w=48\nconv out=32 k=3 pad=1", (Shape){32, 48, 48}, 32 * 9 + 32);
    expect_shape("input c=1 h=48 w=48\nconv out=32 k=3 stride=2 pad=1", (Shape){32, 24, 24}, 320);
    expect_shape("input c=3 h=7 w=9\nconv out=4 k=3 stride=2", (Shape){4, 3, 4}, 4 * 27 + 4);
    expect_shape("input c=3 h=7 w=9\nconv out=4 k=3 bias=0", (Shape){4, 5, 7}, 4 * 27);
    expect_shape("input c=4 h=6 w=6\nconv out=8 k=3 pad=1 groups=2", (Shape){8, 6, 6},
                 8 * 2 * 9 + 8);
    expect_shape("input c=4 h=6 w=6\nconv out=8 k=3 pad=1 groups=4", (Shape){8, 6, 6},
                 8 * 1 * 9 + 8);
    expect_shape("input c=5 h=6 w=6\nconv out=3 k=1", (Shape){3, 6, 6}, 15 + 3);
    expect_shape("input c=2 h=7 w=7\nmaxpool k=2", (Shape){2, 3, 3}, 0);
    expect_shape("input c=2 h=7 w=7\nmaxpool k=3 stride=2 pad=1", (Shape){2, 4, 4}, 0);
    expect_shape("input c=2 h=7 w=8\navgpool k=3 stride=2", (Shape){2, 3, 3}, 0);
    expect_shape("input c=2 h=7 w=8\ngap", (Shape){2, 1, 1}, 0);
    expect_shape("input c=2 h=3 w=5\nflatten\nlinear out=4", (Shape){4, 1, 1}, 30 * 4 + 4);
    expect_shape("input c=2 h=3 w=5\nflatten\nlinear out=4 bias=0", (Shape){4, 1, 1}, 30 * 4);
    expect_shape("input c=6 h=5 w=5\nbn\nrelu\ndropout2d p=0.1\ndropout", (Shape){6, 5, 5}, 12);
    expect_shape("input c=6 h=1 w=1\nbn", (Shape){6, 1, 1}, 12);
    // CBAM, C=32, r=8: fc1 32->4 (+4), fc2 4->32 (+32), 7x7 conv 2->1 without bias
    expect_shape("input c=32 h=6 w=6\ncbam r=8 k=7", (Shape){32, 6, 6},
                 32 * 4 + 4 + 4 * 32 + 32 + 2 * 49);
    expect_shape("input c=3 h=6 w=6\ncbam", (Shape){3, 6, 6}, 3 * 1 + 1 + 1 * 3 + 3 + 2 * 49);
    expect_shape(
        "input c=2 h=6 w=6\nresidual\n  conv out=4 k=3 stride=2 pad=1\n  bn\n  relu\n"
        "shortcut\n  conv out=4 k=1 stride=2 bias=0\nend\nrelu",
        (Shape){4, 3, 3}, (4 * 18 + 4) + 8 + 4 * 2);

    // tensor names, shapes and flags
    Net *net = expect_ok(
        "input c=2 h=6 w=6\nconv out=4 k=3 pad=1\nbn\nresidual\n  conv out=4 k=3 pad=1 bias=0\n"
        "  bn\nshortcut\n  conv out=4 k=1 bias=0\n  bn\nend\ncbam r=2 k=3\ngap\nlinear out=3");
    if (net) {
        int w0[4] = {4, 2, 3, 3}, c4[1] = {4}, w1[4] = {4, 4, 3, 3}, w2[4] = {4, 4, 1, 1};
        int f1[2] = {2, 4}, c2[1] = {2}, f2[2] = {4, 2}, sp[4] = {1, 2, 3, 3}, l[2] = {3, 4},
            c3[1] = {3};
        check_tensor(net, "0.conv.w", 4, w0, 0, 1);
        check_tensor(net, "0.conv.b", 1, c4, 0, 0);
        check_tensor(net, "1.bn.gamma", 1, c4, 0, 0);
        check_tensor(net, "1.bn.beta", 1, c4, 0, 0);
        check_tensor(net, "1.bn.running_mean", 1, c4, 1, 0);
        check_tensor(net, "1.bn.running_var", 1, c4, 1, 0);
        check_tensor(net, "2.res.main.0.conv.w", 4, w1, 0, 1);
        check_tensor(net, "2.res.main.1.bn.gamma", 1, c4, 0, 0);
        check_tensor(net, "2.res.short.0.conv.w", 4, w2, 0, 1);
        check_tensor(net, "2.res.short.1.bn.running_var", 1, c4, 1, 0);
        check_tensor(net, "3.cbam.fc1.w", 2, f1, 0, 1);
        check_tensor(net, "3.cbam.fc1.b", 1, c2, 0, 0);
        check_tensor(net, "3.cbam.fc2.w", 2, f2, 0, 1);
        check_tensor(net, "3.cbam.sp.w", 4, sp, 0, 1);
        check_tensor(net, "5.linear.w", 2, l, 0, 1);
        check_tensor(net, "5.linear.b", 1, c3, 0, 0);
        CHECK(net_tensor(net, "2.res.main.0.conv.b") == NULL, "bias=0 made a bias");
        CHECK(net_tensor(net, "3.cbam.sp.b") == NULL, "cbam's conv has a bias");
        CHECK(net->ntensors == 23, "%d tensors, want 23", net->ntensors);
        size_t params = 0, bufs = 0;
        for (int i = 0; i < net->ntensors; i++) {   // params first in layer order, no overlap
            const Tensor *t = &net->tensors[i];
            if (t->is_buffer) {
                CHECK(t->off == bufs, "%s at %zu, want %zu", t->name, t->off, bufs);
                bufs += t->count;
            } else {
                CHECK(t->off == params, "%s at %zu, want %zu", t->name, t->off, params);
                params += t->count;
            }
        }
        CHECK(params == net->nparams && bufs == net->nbufs, "%zu/%zu params, %zu/%zu buffers",
              params, net->nparams, bufs, net->nbufs);
        CHECK(strcmp(net->file, FILE_NAME) == 0, "file '%s'", net->file);
        net_free(net);
    }

    // comments, blank lines, tabs, CR LF, no final newline: the same net as the plain text
    const char *plain =
        "input c=1 h=8 w=8\nconv out=2 k=3\nrelu\nmaxpool k=2\nflatten\nlinear out=3";
    const char *noisy =
        "# a comment line\n\n   \n\t\ninput\tc=1   h=8 w=8 # the input\r\n# conv next\n"
        "  conv  out=2\tk=3  \r\n\nrelu#no space before the hash\nmaxpool k=2\n\n"
        "flatten\nlinear out=3";
    Net *a = expect_ok(plain), *b = expect_ok(noisy);
    if (a && b) {
        CHECK(a->ntensors == b->ntensors && a->nparams == b->nparams &&
                  a->out.c == b->out.c && a->in.h == b->in.h,
              "comments and spacing change the net");
        CHECK(strcmp(b->arch, noisy) == 0, "net->arch is not the text given");
    }
    net_free(a);
    net_free(b);
    expect_shape("input c=1 h=8 w=8\nrelu\n# residual\n#end\n", (Shape){1, 8, 8}, 0);

    // input normalisation: pixels enter as (p - mean) / std, by default p / 255
    Net *d = expect_ok("input c=1 h=2 w=2\nrelu");
    Net *m = expect_ok("input c=1 h=2 w=2 mean=127.5 std=64\nrelu");
    if (d && m) {
        CHECK(d->in_mean == 0 && d->in_std == 255, "default mean %g std %g", (double)d->in_mean,
              (double)d->in_std);
        CHECK(m->in_mean == (real)127.5 && m->in_std == 64, "mean %g std %g",
              (double)m->in_mean, (double)m->in_std);
        const uint8_t px[4] = {0, 64, 255, 191};
        real x[4];
        net_preprocess(d, px, 1, x);
        CHECK(x[0] == 0 && x[2] == 1, "default preprocessing: %g %g", (double)x[0], (double)x[2]);
        net_preprocess(m, px, 1, x);
        CHECK(x[0] == (real)(-127.5 / 64) && x[3] == (real)(63.5 / 64),
              "preprocessing: %g %g", (double)x[0], (double)x[3]);
    }
    net_free(d);
    net_free(m);
}

// The architectures shipped in assets/models, with their PyTorch parameter counts.
static void check_assets(void) {
    static const struct {
        const char *file;
        size_t params;
        int tensors;
    } A[] = {
        // conv 1->32 5x5 (832), conv 32->64 5x5 (51264), linear 9216->128 (1179776),
        // linear 128->7 (903)
        {"simple_cnn_v1.arch", 1232775, 8},
        // convs 320 + 18496 + 73856 + 295168, bn 2*(32+64+128+256), linear 256->512 (131584),
        // bn 1024, linear 512->7 (3591)
        {"deep_cnn_v1.arch", 524999, 8 + 16 + 2 + 4 + 2},
        // stage 1: 320+64+9248+64 + cbam 390; stage 2: 18496+128+36928+128 + cbam 1194;
        // stage 3: 73856+256+147584+256 + cbam 4338; head 33024+512+1799
        {"cbam_cnn.arch", 328585, 3 * (4 + 8 + 5) + 2 + 4 + 2},
        // stem 288+64; block 32: 2*(9216+64); blocks 64/128/256 with projections:
        // 57728, 230144, 919040; linear 256->7 (1799)
        {"resnet.arch", 1227623, 1 + 4 + 2 * 5 + 3 * 3 * 5 + 2},
        // the VGGs, convs without bias: 9 * (1*32 + 32*32 + 32*64 + 64*64 + 64*128 + 128*128
        // + 128*256 + 256*256) = 1170720, bn 2*2*(32+64+128+256), linear 2304->512 (1179648),
        // bn 1024, linear 512->7 (3591)
        {"vgg.arch", 2356903, 8 + 8 * 4 + 1 + 4 + 2},
        // half width: convs 292752, bn 960, linear 1152->256 (294912), bn 512, 256->7 (1799)
        {"vgg_s.arch", 590935, 8 + 8 * 4 + 1 + 4 + 2},
        // 1.5 times the width: convs 2633904, bn 2880, linear 3456->512 (1769472), bn 1024,
        // linear 512->7 (3591)
        {"vgg_w.arch", 4410871, 8 + 8 * 4 + 1 + 4 + 2},
        // vgg.arch with a CBAM block after each of its four pools: cbam_cnn.arch's 390, 1194
        // and 4338 at 32, 64 and 128 channels, and 16770 at 256 (2*256*32 + 32 + 256 + 98)
        {"cbam_v.arch", 2379595, 8 + 8 * 4 + 1 + 4 + 2 + 4 * 5},
    };
    for (size_t i = 0; i < sizeof A / sizeof A[0]; i++) {
        char path[1024], err[EMO_ERRLEN];
        snprintf(path, sizeof path, "%s/assets/models/%s", EMOCAM_SOURCE_DIR, A[i].file);
        Net *net = net_parse_file(path, err, sizeof err);
        CHECK(net != NULL, "%s", err);
        if (!net) continue;
        CHECK(net->in.c == 1 && net->in.h == 48 && net->in.w == 48, "%s: input", A[i].file);
        CHECK(net->out.c == 7 && net->out.h == 1 && net->out.w == 1, "%s: output", A[i].file);
        CHECK(net_count_params(net) == A[i].params, "%s: %zu parameters, PyTorch has %zu",
              A[i].file, net_count_params(net), A[i].params);
        CHECK(net->ntensors == A[i].tensors, "%s: %d tensors, want %d", A[i].file, net->ntensors,
              A[i].tensors);
        CHECK(strcmp(net->file, path) == 0, "%s: file '%s'", A[i].file, net->file);
        printf("%-20s %9zu parameters, %2d tensors, %.1f MFLOP per face\n", A[i].file,
               net_count_params(net), net->ntensors, net_flops(net) / 1e6);
        net_free(net);
    }
}

static void write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(data, 1, len, f) == len && fclose(f) == 0, "cannot write %s", path);
}

static void check_files(void) {
    char err[EMO_ERRLEN], path[1024];
    const char *dir = test_tmpdir();
    // missing
    snprintf(path, sizeof path, "%s/missing.arch", dir);
    Net *net = net_parse_file(path, err, sizeof err);
    CHECK(!net && strstr(err, path) && strstr(err, "cannot open"), "missing file: '%s'", err);
    net_free(net);
    // a directory
    net = net_parse_file(dir, err, sizeof err);
    CHECK(!net && strstr(err, dir), "a directory: '%s'", err);
    net_free(net);
    // binary, with NUL bytes
    snprintf(path, sizeof path, "%s/binary.arch", dir);
    static const unsigned char bin[] = "input c=1 h=8 w=8\nrelu\n\0\x01\x02\xff garbage";
    write_file(path, bin, sizeof bin);
    net = net_parse_file(path, err, sizeof err);
    CHECK(!net && strstr(err, path) && strstr(err, "NUL"), "binary file: '%s'", err);
    net_free(net);
    unlink(path);
    // an empty file
    snprintf(path, sizeof path, "%s/empty.arch", dir);
    write_file(path, "", 0);
    net = net_parse_file(path, err, sizeof err);
    CHECK(!net && strstr(err, path) && strstr(err, "no 'input'"), "empty file: '%s'", err);
    net_free(net);
    unlink(path);
    // an error inside a file names the path and the line
    snprintf(path, sizeof path, "%s/bad.arch", dir);
    const char *bad = "input c=1 h=8 w=8\n# ok so far\nconv out=2 k=3 wat=1\n";
    write_file(path, bad, strlen(bad));
    net = net_parse_file(path, err, sizeof err);
    char want[1100];
    snprintf(want, sizeof want, "%s:3: ", path);
    CHECK(!net && strncmp(err, want, strlen(want)) == 0 && strstr(err, "wat"), "bad file: '%s'",
          err);
    net_free(net);
    unlink(path);
    // a file over 1 MiB is not an architecture (comments only, so it would parse otherwise):
    // just over the stated limit, and well over it
    snprintf(path, sizeof path, "%s/huge.arch", dir);
    size_t sizes[2] = {(1u << 20) + 4096, 3u << 20}, hl = sizes[1];
    char *huge = malloc(hl);
    if (huge) {
        memset(huge, '#', hl);
        memcpy(huge, "input c=1 h=8 w=8\nrelu\n", 23);
        for (size_t i = 100; i < hl; i += 100) huge[i] = '\n';
        for (int i = 0; i < 2; i++) {
            write_file(path, huge, sizes[i]);
            err[0] = 0;
            net = net_parse_file(path, err, sizeof err);
            CHECK(!net && strstr(err, path) && strstr(err, "1 MiB"),
                  "a %zu-byte file was parsed, or refused with '%s'", sizes[i], err);
            net_free(net);
        }
        // under the limit it parses
        write_file(path, huge, 1u << 19);
        net = net_parse_file(path, err, sizeof err);
        CHECK(net != NULL, "a 512 KiB text with comments: '%s'", err);
        net_free(net);
        free(huge);
    }
    unlink(path);
    CHECK(rmdir(dir) == 0, "%s is not empty: %s", dir, strerror(errno));
}

int main(void) {
    check_errors();
    check_valid();
    check_assets();
    check_files();
    return test_result("test_arch");
}

/*
 * fake_finance_sdk.c: OUR OWN TEST DOUBLE of the ABI of WeCom's conversation-archive library
 * libWeWorkFinanceSdk_C.so (header WeWorkFinanceSdk_C.h). It is NOT the vendor binary and holds
 * none of its code: it implements the same functions and structs so that
 * wecom_sdk/msgaudit/vendor.py is tested through real ctypes calls. tests/support/vendor_double.py
 * compiles it (cc -shared -fPIC -O1). It behaves like a tiny WeCom, configured by environment
 * variables read at call time:
 *
 *   FAKE_FINANCE_CORPID, FAKE_FINANCE_SECRET
 *       Init accepts this pair only: another corpid or secret returns 10004 (the header's
 *       "key error", the nearest documented code; the real library is reported to accept
 *       anything in Init and to answer errcode 41001 in GetChatData's JSON instead). Unset: 10000.
 *   FAKE_FINANCE_PROXY, FAKE_FINANCE_PROXY_PASSWORD
 *       The proxy and password every network call must be given ("" when unset); others: 10001.
 *   FAKE_FINANCE_CHATDATA
 *       A file of chatdata JSON objects, one per line. GetChatData answers
 *       {"errcode":0,"errmsg":"ok","chatdata":[...]} with the lines whose "seq" is greater than
 *       the seq asked, up to limit, in file order (lines without a "seq" number are skipped).
 *       limit 0 or > 1000, or timeout <= 0: 10000. Unset or unreadable: 10001 (network).
 *   FAKE_FINANCE_MEDIA_DIR
 *       GetMediaData serves the file <dir>/<sdkfileid> in chunks of 512 KB: indexbuf and
 *       outindexbuf are the decimal byte offset ("" = 0), is_finish is set with the last chunk.
 *       No such file (or a sdkfileid with '/' or a leading '.'): 10005. A bad index: 10000.
 *   FAKE_FINANCE_DELAY_US
 *       Every call sleeps this many microseconds first (to make overlapping calls likely).
 *   FAKE_FINANCE_NEWSDK_FAIL
 *       When set, NewSdk returns NULL.
 *
 * DecryptData(encrypt_key, encrypt_msg) returns "<encrypt_key>:<payload>", where payload is
 * encrypt_msg, or the bytes hex-encoded after a "hex:" prefix (any bytes, NUL included);
 * encrypt_key "bad" or bad hex: 10006.
 *
 * Calls that overlap in time (from two threads, on any handle) return 10003: the real library is
 * not documented as thread-safe, and the binding must serialise its calls.
 * FakeLiveObjects() (test-only, not in the vendor ABI) counts the handles, slices and media
 * buffers allocated and not yet freed. Built with -DFAKE_FINANCE_OMIT_DECRYPT it lacks
 * DecryptData (a library with a missing symbol).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_LIMIT 1000
#define CHUNK (512 * 1024)

typedef struct WeWorkFinanceSdk_t {
    int ready;
} WeWorkFinanceSdk_t;

typedef struct Slice_t {
    char *buf;
    int len;
} Slice_t;

typedef struct MediaData {
    char *outindexbuf;
    int out_len;
    char *data;
    int data_len;
    int is_finish;
} MediaData_t;

static int busy;  /* calls in progress */
static int live;  /* objects allocated and not freed */

/* Enter a call; nonzero when another call was already running. */
static int enter(void) {
    int others = __atomic_fetch_add(&busy, 1, __ATOMIC_SEQ_CST);
    const char *delay = getenv("FAKE_FINANCE_DELAY_US");
    if (delay) usleep((useconds_t)atoi(delay));
    return others != 0;
}

/* Leave a call; nonzero when another call ran meanwhile. */
static int leave(void) {
    return __atomic_fetch_sub(&busy, 1, __ATOMIC_SEQ_CST) != 1;
}

static int finish(int overlapped, int ret) {
    overlapped |= leave();
    return overlapped ? 10003 : ret;
}

static const char *env_or_empty(const char *name) {
    const char *value = getenv(name);
    return value ? value : "";
}

static int proxy_ok(const char *proxy, const char *passwd) {
    return strcmp(proxy ? proxy : "", env_or_empty("FAKE_FINANCE_PROXY")) == 0 &&
           strcmp(passwd ? passwd : "", env_or_empty("FAKE_FINANCE_PROXY_PASSWORD")) == 0;
}

/* Replace *buf (of *len bytes) with a NUL-terminated copy of len bytes at data. */
static int set_buffer(char **buf, int *len, const char *data, size_t n) {
    char *copy = malloc(n + 1);
    if (!copy) return 10003;
    memcpy(copy, data, n);
    copy[n] = '\0';
    free(*buf);
    *buf = copy;
    *len = (int)n;
    return 0;
}

WeWorkFinanceSdk_t *NewSdk(void) {
    if (getenv("FAKE_FINANCE_NEWSDK_FAIL")) return NULL;
    WeWorkFinanceSdk_t *sdk = calloc(1, sizeof *sdk);
    if (sdk) __atomic_fetch_add(&live, 1, __ATOMIC_SEQ_CST);
    return sdk;
}

int Init(WeWorkFinanceSdk_t *sdk, const char *corpid, const char *secret) {
    int overlapped = enter();
    const char *want_corpid = getenv("FAKE_FINANCE_CORPID");
    const char *want_secret = getenv("FAKE_FINANCE_SECRET");
    if (!sdk || !corpid || !secret || !want_corpid || !want_secret) return finish(overlapped, 10000);
    if (strcmp(corpid, want_corpid) != 0 || strcmp(secret, want_secret) != 0)
        return finish(overlapped, 10004);
    sdk->ready = 1;
    return finish(overlapped, 0);
}

void DestroySdk(WeWorkFinanceSdk_t *sdk) {
    if (!sdk) return;
    free(sdk);
    __atomic_fetch_sub(&live, 1, __ATOMIC_SEQ_CST);
}

Slice_t *NewSlice(void) {
    Slice_t *slice = calloc(1, sizeof *slice);
    if (slice) __atomic_fetch_add(&live, 1, __ATOMIC_SEQ_CST);
    return slice;
}

void FreeSlice(Slice_t *slice) {
    if (!slice) return;
    free(slice->buf);
    free(slice);
    __atomic_fetch_sub(&live, 1, __ATOMIC_SEQ_CST);
}

char *GetContentFromSlice(Slice_t *slice) { return slice->buf; }
int GetSliceLen(Slice_t *slice) { return slice->len; }

MediaData_t *NewMediaData(void) {
    MediaData_t *media = calloc(1, sizeof *media);
    if (media) __atomic_fetch_add(&live, 1, __ATOMIC_SEQ_CST);
    return media;
}

void FreeMediaData(MediaData_t *media) {
    if (!media) return;
    free(media->outindexbuf);
    free(media->data);
    free(media);
    __atomic_fetch_sub(&live, 1, __ATOMIC_SEQ_CST);
}

char *GetOutIndexBuf(MediaData_t *media) { return media->outindexbuf; }
char *GetData(MediaData_t *media) { return media->data; }
int GetIndexLen(MediaData_t *media) { return media->out_len; }
int GetDataLen(MediaData_t *media) { return media->data_len; }
int IsMediaDataFinish(MediaData_t *media) { return media->is_finish; }

int FakeLiveObjects(void) { return __atomic_load_n(&live, __ATOMIC_SEQ_CST); }

/* The answer built in a growing buffer. */
typedef struct {
    char *buf;
    size_t len, cap;
} Text;

static int append(Text *t, const char *s, size_t n) {
    if (t->len + n + 1 > t->cap) {
        size_t cap = (t->len + n + 1) * 2;
        char *grown = realloc(t->buf, cap);
        if (!grown) return 0;
        t->buf = grown;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
    return 1;
}

/* The number after "seq": in line, or -1. */
static long long line_seq(const char *line) {
    const char *key = strstr(line, "\"seq\"");
    unsigned long long seq;
    if (!key) return -1;
    key = strchr(key + 5, ':');
    if (!key || sscanf(key + 1, " %llu", &seq) != 1) return -1;
    return (long long)seq;
}

int GetChatData(WeWorkFinanceSdk_t *sdk, unsigned long long seq, unsigned int limit,
                const char *proxy, const char *passwd, int timeout, Slice_t *chat_datas) {
    int overlapped = enter();
    if (!sdk || !sdk->ready || !chat_datas) return finish(overlapped, 10000);
    if (limit == 0 || limit > MAX_LIMIT || timeout <= 0) return finish(overlapped, 10000);
    if (!proxy_ok(proxy, passwd)) return finish(overlapped, 10001);
    const char *path = getenv("FAKE_FINANCE_CHATDATA");
    FILE *file = path ? fopen(path, "r") : NULL;
    if (!file) return finish(overlapped, 10001);

    static const char head[] = "{\"errcode\":0,\"errmsg\":\"ok\",\"chatdata\":[";
    Text answer = {0};
    int ok = append(&answer, head, sizeof head - 1);
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t n;
    unsigned int count = 0;
    while (ok && count < limit && (n = getline(&line, &line_cap, file)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
        long long line_no = line_seq(line);
        if (line_no < 0 || (unsigned long long)line_no <= seq) continue;
        ok = (count == 0 || append(&answer, ",", 1)) && append(&answer, line, (size_t)n);
        count++;
    }
    free(line);
    fclose(file);
    ok = ok && append(&answer, "]}", 2);
    int ret = ok ? set_buffer(&chat_datas->buf, &chat_datas->len, answer.buf, answer.len) : 10003;
    free(answer.buf);
    return finish(overlapped, ret);
}

#ifndef FAKE_FINANCE_OMIT_DECRYPT
static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int DecryptData(const char *encrypt_key, const char *encrypt_msg, Slice_t *msg) {
    int overlapped = enter();
    if (!encrypt_key || !encrypt_msg || !msg) return finish(overlapped, 10000);
    if (strcmp(encrypt_key, "bad") == 0) return finish(overlapped, 10006);
    size_t key_len = strlen(encrypt_key), msg_len = strlen(encrypt_msg);
    char *plain = malloc(key_len + 1 + msg_len + 1);
    if (!plain) return finish(overlapped, 10003);
    memcpy(plain, encrypt_key, key_len);
    plain[key_len] = ':';
    size_t len = key_len + 1;
    int ret = 0;
    if (strncmp(encrypt_msg, "hex:", 4) == 0) {
        const char *hex = encrypt_msg + 4;
        size_t digits = msg_len - 4;
        if (digits % 2) ret = 10006;
        for (size_t i = 0; !ret && i < digits; i += 2) {
            int high = hex_value(hex[i]), low = hex_value(hex[i + 1]);
            if (high < 0 || low < 0) ret = 10006;
            else plain[len++] = (char)(high * 16 + low);
        }
    } else {
        memcpy(plain + len, encrypt_msg, msg_len);
        len += msg_len;
    }
    if (!ret) ret = set_buffer(&msg->buf, &msg->len, plain, len);
    free(plain);
    return finish(overlapped, ret);
}
#endif

int GetMediaData(WeWorkFinanceSdk_t *sdk, const char *indexbuf, const char *sdk_fileid,
                 const char *proxy, const char *passwd, int timeout, MediaData_t *media_data) {
    int overlapped = enter();
    if (!sdk || !sdk->ready || !media_data || timeout <= 0) return finish(overlapped, 10000);
    if (!proxy_ok(proxy, passwd)) return finish(overlapped, 10001);
    const char *dir = getenv("FAKE_FINANCE_MEDIA_DIR");
    if (!dir || !sdk_fileid || !*sdk_fileid || strchr(sdk_fileid, '/') || sdk_fileid[0] == '.')
        return finish(overlapped, 10005);
    long long offset = 0;
    if (indexbuf && *indexbuf) {
        char *end;
        offset = strtoll(indexbuf, &end, 10);
        if (*end || offset < 0) return finish(overlapped, 10000);
    }
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, sdk_fileid) >= (int)sizeof path)
        return finish(overlapped, 10005);
    FILE *file = fopen(path, "rb");
    if (!file) return finish(overlapped, 10005);
    if (fseek(file, 0, SEEK_END) != 0) {
        fclose(file);
        return finish(overlapped, 10003);
    }
    long long size = ftell(file);
    if (offset > size) {
        fclose(file);
        return finish(overlapped, 10000);
    }
    char *chunk = malloc(CHUNK);
    size_t n = 0;
    int ret = chunk && fseek(file, (long)offset, SEEK_SET) == 0 ? 0 : 10003;
    if (!ret) n = fread(chunk, 1, CHUNK, file);
    fclose(file);
    if (!ret) ret = set_buffer(&media_data->data, &media_data->data_len, chunk, n);
    free(chunk);
    if (!ret) {
        char next[32];
        int len = snprintf(next, sizeof next, "%lld", offset + (long long)n);
        ret = set_buffer(&media_data->outindexbuf, &media_data->out_len, next, (size_t)len);
        media_data->is_finish = offset + (long long)n >= size;
    }
    return finish(overlapped, ret);
}

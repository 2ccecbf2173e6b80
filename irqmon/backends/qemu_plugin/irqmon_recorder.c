/* SPDX-License-Identifier: MIT
 *
 * irqmon's recorder: a QEMU TCG plugin that writes a binary record for every execution of an
 * instrumented Cortex-M instruction and every access to a watched range, without halting the
 * core. irqmon (irqmon/backends/qemu_plugin/) decides what to instrument and decodes the records.
 *
 * Licensed MIT (GPLv2-compatible: QEMU loads this file into its own GPLv2 process).
 *
 * Arguments (key=value):
 *   out=PATH     where the records go (a FIFO irqmon reads, or a file)
 *   sites=PATH   what to instrument, one item a line:
 *                  S ADDR FLAGS TARGET_KIND TARGET_REG TARGET_OFFSET CONDITION   an instruction
 *                    [MARKER_REG MARKER_OFFSET MARKER_SIZE]   and a word its site record carries:
 *                    MARKER_SIZE bytes at MARKER_REG + MARKER_OFFSET as the instruction is reached
 *                  W ADDR SIZE                                       a watched range
 *                  T POINTER NAME_OFFSET NAME_LENGTH                 the RTOS current-task pointer
 *   window=N     bytes of stack copied with each site and access record (from sp, and from psp
 *                when an exception interrupted code on the process stack)
 *   stack_top=A  the main stack's top (the vector table's initial sp): windows from the main
 *                stack end there
 *
 * Output: chunks, each a `struct chunk` header, its records' fixed headers (`struct record`),
 * then their stack windows back to back (each record's sp window, then its psp window, of the
 * lengths its header gives), so a reader decodes a chunk's headers as one array.
 *
 * The part of the plugin API used here is declared below from QEMU's plugin documentation
 * (API version 4, QEMU 10.0).
 */

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/uio.h>
#include <errno.h>
#include <pthread.h>

/* ---- the QEMU plugin API, as documented ------------------------------------------------ */

typedef uint64_t qemu_plugin_id_t;
typedef struct {
    const char *target_name;
    struct { int min; int cur; } version;
    bool system_emulation;
    union { struct { int smp_vcpus; int max_vcpus; } system; };
} qemu_info_t;

struct qemu_plugin_tb;
struct qemu_plugin_insn;
struct qemu_plugin_scoreboard;
struct qemu_plugin_register;
typedef struct { struct qemu_plugin_scoreboard *score; size_t offset; } qemu_plugin_u64;
typedef struct { struct qemu_plugin_register *handle; const char *name; const char *feature; } reg_descriptor;
/* GLib's arrays, as QEMU passes them (GArray and GByteArray share this layout). */
typedef struct { char *data; unsigned int len; } GArray;
typedef struct { uint8_t *data; unsigned int len; } GByteArray;
typedef uint32_t qemu_plugin_meminfo_t;
typedef struct {
    int type;
    union { uint8_t u8; uint16_t u16; uint32_t u32; uint64_t u64; struct { uint64_t low, high; } u128; } data;
} qemu_plugin_mem_value;

enum { CB_NO_REGS, CB_R_REGS };
enum { MEM_R = 1, MEM_W, MEM_RW };
enum { INLINE_ADD_U64 };

typedef void (*vcpu_udata_cb)(unsigned int vcpu, void *userdata);
typedef void (*vcpu_simple_cb)(qemu_plugin_id_t id, unsigned int vcpu);
typedef void (*udata_cb)(qemu_plugin_id_t id, void *userdata);
typedef void (*tb_trans_cb)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*vcpu_mem_cb)(unsigned int vcpu, qemu_plugin_meminfo_t info, uint64_t vaddr, void *userdata);

void qemu_plugin_register_vcpu_init_cb(qemu_plugin_id_t id, vcpu_simple_cb cb);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, tb_trans_cb cb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, udata_cb cb, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, vcpu_udata_cb cb, int flags, void *userdata);
void qemu_plugin_register_vcpu_mem_cb(struct qemu_plugin_insn *insn, vcpu_mem_cb cb, int flags, int rw, void *userdata);
void qemu_plugin_register_vcpu_tb_exec_inline_per_vcpu(struct qemu_plugin_tb *tb, int op, qemu_plugin_u64 entry, uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t index);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
unsigned int qemu_plugin_mem_size_shift(qemu_plugin_meminfo_t info);
bool qemu_plugin_mem_is_store(qemu_plugin_meminfo_t info);
qemu_plugin_mem_value qemu_plugin_mem_get_value(qemu_plugin_meminfo_t info);
GArray *qemu_plugin_get_registers(void);
int qemu_plugin_read_register(struct qemu_plugin_register *handle, GByteArray *buf);
bool qemu_plugin_read_memory_vaddr(uint64_t address, GByteArray *data, size_t len);
struct qemu_plugin_scoreboard *qemu_plugin_scoreboard_new(size_t element_size);
uint64_t qemu_plugin_u64_get(qemu_plugin_u64 entry, unsigned int vcpu);
void qemu_plugin_outs(const char *text);
/* GLib, loaded in QEMU's process. */
GByteArray *g_byte_array_new(void);
GByteArray *g_byte_array_set_size(GByteArray *array, unsigned int length);

__attribute__((visibility("default"))) int qemu_plugin_version = 4;

/* ---- the records (irqmon/backends/qemu_plugin/records.py decodes the same layout) -------- */

enum { RECORD_SITE = 1, RECORD_ACCESS, RECORD_ENTER, RECORD_EXIT, RECORD_RETURN };
enum { SITE_HIT = 1, SITE_HANDLER = 2, SITE_EXIT = 4, SITE_RETURN = 8 };
enum { TARGET_NONE, TARGET_REGISTER, TARGET_MEMORY };

/* Registers in record order: r0-r12, sp, lr, xpsr, msp, psp, primask, basepri, faultmask, control. */
static const char *const REGISTER_NAMES[] = {
    "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "r12",
    "sp", "lr", "xpsr", "msp", "psp", "primask", "basepri", "faultmask", "control",
};
#define REGISTERS (sizeof REGISTER_NAMES / sizeof REGISTER_NAMES[0])
enum { REG_SP = 13, REG_LR = 14, REG_XPSR = 15, REG_MSP = 16, REG_PSP = 17 };

struct record {
    uint8_t type, access_size, is_store, reserved;
    uint32_t pc;
    uint64_t instructions; /* retired before this instruction */
    uint64_t host_ns;      /* CLOCK_MONOTONIC less stalled_ns */
    uint32_t regs[REGISTERS];
    uint32_t a, b, c;      /* site: marker word, 1 if it was read; access: range, value after, value before;
                              enter: priority byte; exit: EXC_RETURN; return: where to */
    uint32_t task;         /* the current task's control block (thread mode, with a task pointer) */
    char task_name[16];
    uint16_t sp_window_length, psp_window_length; /* bytes of each window that could be read */
} __attribute__((packed));

#define CHUNK_MAGIC 0x43515249u /* "IRQC" */
struct chunk {
    uint32_t magic, records, window_bytes, reserved;
};

struct site {
    uint32_t address;
    uint32_t flags;
    uint32_t target_kind, target_reg;
    int32_t target_offset;
    uint32_t condition;        /* 0-13 inside an IT block, 14 always */
    uint32_t marker_reg, marker_offset, marker_size; /* marker_size 0: no marker */
};

struct watch {
    uint32_t address, size;
    uint8_t shadow[8];
};

struct placed {                /* one instrumented instruction of one translation */
    const struct site *site;
    uint32_t pc;
    uint32_t back;             /* instructions of its block from it to the block's end */
};

/* ---- state ------------------------------------------------------------------------------ */

static struct site *sites;
static size_t site_count;
static struct watch watches[32];
static size_t watch_count;
static bool seeded;
static uint32_t task_pointer, task_name_offset, task_name_length;
static uint32_t window = 256;
static uint32_t stack_top;
static struct qemu_plugin_register *handles[REGISTERS];
static GByteArray *scratch;
static qemu_plugin_u64 retired;
static uint32_t active[64]; /* the exceptions entered and not yet returned, innermost last */
static unsigned depth;
static int out_fd = -1;
static struct record *headers;   /* this chunk's records */
static uint8_t *windows;          /* and their stack windows */
static size_t header_count, windows_used;
#define CHUNK_RECORDS 8192
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* the buffer: vCPU against flusher */
static pthread_t flush_thread;
static bool stopping;
#define FLUSH_NS 20000000
/* Host time the vCPU spent waiting for its records to be written (a full pipe, the flusher
 * holding the buffer): the core did not run, so the stamps leave it out, as the halting backends
 * leave out their halts. */
static uint64_t stalled_ns;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The records held so far as one chunk. */
static void flush(void)
{
    if (header_count == 0)
        return;
    struct chunk head = { CHUNK_MAGIC, (uint32_t)header_count, (uint32_t)windows_used, 0 };
    struct iovec parts[3] = {
        { &head, sizeof head },
        { headers, header_count * sizeof *headers },
        { windows, windows_used },
    };
    unsigned first = 0;
    while (first < 3 && out_fd >= 0) {
        ssize_t n = writev(out_fd, parts + first, (int)(3 - first));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {          /* the reader is gone: stop recording, let the guest run on */
            close(out_fd);
            out_fd = -1;
            break;
        }
        size_t left = (size_t)n;
        while (first < 3 && left >= parts[first].iov_len)
            left -= parts[first++].iov_len;
        if (first < 3) {
            parts[first].iov_base = (uint8_t *)parts[first].iov_base + left;
            parts[first].iov_len -= left;
        }
    }
    header_count = windows_used = 0;
}

static int compare_sites(const void *a, const void *b)
{
    uint32_t x = ((const struct site *)a)->address, y = ((const struct site *)b)->address;
    return x < y ? -1 : x > y;
}

static const struct site *site_at(uint32_t address)
{
    struct site key = { .address = address };
    return bsearch(&key, sites, site_count, sizeof *sites, compare_sites);
}

static uint32_t read_register(unsigned index)
{
    g_byte_array_set_size(scratch, 0); /* a read appends to the array */
    if (!handles[index] || qemu_plugin_read_register(handles[index], scratch) < 4)
        return 0;
    uint32_t value;
    memcpy(&value, scratch->data, 4);
    return value;
}

static bool read_memory(uint32_t address, void *into, size_t length)
{
    if (!qemu_plugin_read_memory_vaddr(address, scratch, length) || scratch->len < length)
        return false;
    memcpy(into, scratch->data, length);
    return true;
}

/* The vCPU takes the buffer; waiting for the flusher counts as stalled. */
static void lock_buffer(void)
{
    if (pthread_mutex_trylock(&lock) == 0)
        return;
    uint64_t waiting = now_ns();
    pthread_mutex_lock(&lock);
    stalled_ns += now_ns() - waiting;
}

/* A record in the chunk, with room left for its windows; the caller fills it. */
static struct record *new_record(unsigned type, uint32_t pc, uint64_t instructions)
{
    if (header_count == CHUNK_RECORDS || windows_used + 2 * (size_t)window > CHUNK_RECORDS * 2 * (size_t)window) {
        uint64_t writing = now_ns();
        flush();
        stalled_ns += now_ns() - writing;
    }
    struct record *r = &headers[header_count++];
    memset(r, 0, sizeof *r);
    r->type = (uint8_t)type;
    r->pc = pc;
    r->instructions = instructions;
    r->host_ns = now_ns() - stalled_ns;
    return r;
}

/* The reader sees every record within FLUSH_NS, also when the core sleeps or spins. */
static void *flusher(void *unused)
{
    const struct timespec pause = { 0, FLUSH_NS };
    for (;;) {
        nanosleep(&pause, NULL);
        pthread_mutex_lock(&lock);
        bool done = stopping;
        if (!done)
            flush();
        pthread_mutex_unlock(&lock);
        if (done)
            return NULL;
    }
}

static void read_registers(struct record *r)
{
    for (unsigned i = 0; i < REGISTERS; i++)
        r->regs[i] = read_register(i);
}

/* Stack from `address`, appended to the chunk's windows: as much of `length` bytes as can be
 * read (the top of RAM ends it). */
static uint16_t copy_window(uint32_t address, uint32_t length)
{
    uint8_t *into = windows + windows_used;
    uint32_t copied = 0;
    if (read_memory(address, into, length))
        copied = length;
    else
        for (uint32_t step = 64; step >= 4; step /= 16)
            while (copied + step <= length && read_memory(address + copied, into + copied, step))
                copied += step;
    windows_used += copied;
    return (uint16_t)copied;
}

/* The window's length from sp: the main stack's part ends at its top. */
static uint32_t window_from(uint32_t sp, uint32_t msp)
{
    if (sp == msp && stack_top > sp && stack_top - sp < window)
        return (stack_top - sp) & ~3u;
    return window;
}

static void add_context(struct record *r)
{
    uint32_t sp = r->regs[REG_SP];
    r->sp_window_length = copy_window(sp, window_from(sp, r->regs[REG_MSP]));
    uint32_t ipsr = r->regs[REG_XPSR] & 0x1FF;
    if (ipsr != 0 && r->regs[REG_PSP] != sp)
        r->psp_window_length = copy_window(r->regs[REG_PSP], window);
    if (ipsr == 0 && task_pointer && read_memory(task_pointer, &r->task, 4) && r->task) {
        uint32_t length = task_name_length < sizeof r->task_name ? task_name_length : sizeof r->task_name;
        read_memory(r->task + task_name_offset, r->task_name, length);
    }
}

/* Where the site's instruction sends pc, from its base register's value. */
static uint32_t target_of(const struct site *s, uint32_t base)
{
    if (s->target_kind == TARGET_REGISTER)
        return base;
    uint32_t word = 0;
    if (s->target_kind == TARGET_MEMORY)
        read_memory(base + (uint32_t)s->target_offset, &word, 4);
    return word;
}

/* Whether an instruction with `condition` executes under the flags in xPSR (A7.3). */
static bool passes(uint32_t condition, uint32_t xpsr)
{
    bool n = xpsr >> 31 & 1, z = xpsr >> 30 & 1, c = xpsr >> 29 & 1, v = xpsr >> 28 & 1, result;
    switch (condition >> 1) {
    case 0: result = z; break;
    case 1: result = c; break;
    case 2: result = n; break;
    case 3: result = v; break;
    case 4: result = c && !z; break;
    case 5: result = n == v; break;
    case 6: result = !z && n == v; break;
    default: return true;
    }
    return (condition & 1) ? !result : result;
}

static uint32_t raw_priority(uint32_t exception)
{
    uint8_t byte;
    if (exception < 4)
        return 0xFFFFFFFFu;
    uint32_t address = exception >= 16 ? 0xE000E400u + exception - 16 : 0xE000ED18u + exception - 4;
    return read_memory(address, &byte, 1) ? byte : 0xFFFFFFFFu;
}

/* The site's marker word, read from the object its register points at (none at NULL). */
static void read_marker(const struct site *s, struct record *r)
{
    uint32_t object = r->regs[s->marker_reg];
    if (s->marker_size == 0 || object == 0)
        return;
    if (read_memory(object + s->marker_offset, &r->a, s->marker_size))
        r->b = 1;
}

static void seed_watches(void)
{
    for (size_t i = 0; i < watch_count; i++)
        read_memory(watches[i].address, watches[i].shadow, watches[i].size);
    seeded = true;
}

/* ---- callbacks ---------------------------------------------------------------------------- */

static void record_instruction(unsigned int vcpu, const struct placed *p);

static void on_instruction(unsigned int vcpu, void *userdata)
{
    lock_buffer();
    record_instruction(vcpu, userdata);
    pthread_mutex_unlock(&lock);
}

static void record_instruction(unsigned int vcpu, const struct placed *p)
{
    const struct site *s = p->site;
    uint64_t instructions = qemu_plugin_u64_get(retired, vcpu) - p->back;
    if (!seeded)
        seed_watches();
    uint32_t xpsr = read_register(REG_XPSR), ipsr = xpsr & 0x1FF;

    if ((s->flags & SITE_HANDLER) && ipsr != 0 && (depth == 0 || active[depth - 1] != ipsr)) {
        struct record *r = new_record(RECORD_ENTER, p->pc, instructions);
        r->regs[REG_XPSR] = xpsr;
        r->a = raw_priority(ipsr);
        if (depth < sizeof active / sizeof active[0])
            active[depth++] = ipsr;
    }
    if (s->flags & SITE_HIT) {
        struct record *r = new_record(RECORD_SITE, p->pc, instructions);
        read_registers(r);
        add_context(r);
        read_marker(s, r);
    }
    bool executes = passes(s->condition, xpsr);
    if ((s->flags & SITE_EXIT) && executes && depth > 0 && ipsr != 0) {
        uint32_t target = target_of(s, read_register(s->target_reg)); /* only the register it needs */
        if ((target & 0xFF000000u) == 0xFF000000u) { /* EXC_RETURN: the exception returns */
            struct record *r = new_record(RECORD_EXIT, p->pc, instructions);
            r->regs[REG_XPSR] = xpsr;
            r->a = target;
            while (depth > 0 && active[--depth] != ipsr)
                ;                                      /* one missed entry does not derail */
            }
    }
    if ((s->flags & SITE_RETURN) && executes) {
        struct record *r = new_record(RECORD_RETURN, p->pc, instructions);
        read_registers(r);
        r->a = target_of(s, r->regs[s->target_reg]);
        add_context(r);
    }
}

static void on_memory(unsigned int vcpu, qemu_plugin_meminfo_t info, uint64_t vaddr, void *userdata)
{
    unsigned size = 1u << qemu_plugin_mem_size_shift(info);
    for (size_t i = 0; i < watch_count; i++) {
        struct watch *w = &watches[i];
        if (vaddr + size <= w->address || vaddr >= (uint64_t)w->address + w->size)
            continue;
        const struct placed *p = userdata;
        lock_buffer();
        if (!seeded)
            seed_watches();
        qemu_plugin_mem_value value = qemu_plugin_mem_get_value(info);
        uint8_t bytes[8];
        memcpy(bytes, &value.data, sizeof bytes); /* little endian host and guest */
        struct record *r = new_record(RECORD_ACCESS, p->pc, qemu_plugin_u64_get(retired, vcpu) - p->back);
        uint32_t before = 0, after = 0;
        memcpy(&before, w->shadow, w->size < 4 ? w->size : 4);
        for (unsigned b = 0; b < size; b++) {
            uint64_t at = vaddr + b;
            if (at >= w->address && at < (uint64_t)w->address + w->size)
                w->shadow[at - w->address] = bytes[b];
        }
        memcpy(&after, w->shadow, w->size < 4 ? w->size : 4);
        read_registers(r);
        r->access_size = (uint8_t)size;
        r->is_store = qemu_plugin_mem_is_store(info);
        r->a = w->address;
        r->b = after;
        r->c = before;
        add_context(r);
        pthread_mutex_unlock(&lock);
    }
}

static void on_translation(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);
    qemu_plugin_register_vcpu_tb_exec_inline_per_vcpu(tb, INLINE_ADD_U64, retired, n);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint32_t pc = (uint32_t)qemu_plugin_insn_vaddr(insn);
        const struct site *s = site_at(pc);
        if (!s && watch_count == 0)
            continue;
        struct placed *p = malloc(sizeof *p);
        if (!p)
            return;
        *p = (struct placed){ .site = s, .pc = pc, .back = (uint32_t)(n - i) };
        if (s)
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_instruction, CB_R_REGS, p);
        if (watch_count)
            qemu_plugin_register_vcpu_mem_cb(insn, on_memory, CB_R_REGS, MEM_RW, p);
    }
}

static void on_vcpu_init(qemu_plugin_id_t id, unsigned int vcpu)
{
    GArray *registers = qemu_plugin_get_registers();
    const reg_descriptor *descriptors = (const reg_descriptor *)registers->data;
    for (unsigned i = 0; i < registers->len; i++)
        for (unsigned k = 0; k < REGISTERS; k++)
            if (strcmp(descriptors[i].name, REGISTER_NAMES[k]) == 0)
                handles[k] = descriptors[i].handle;
}

static void on_atexit(qemu_plugin_id_t id, void *userdata)
{
    pthread_mutex_lock(&lock);
    stopping = true;
    pthread_mutex_unlock(&lock);
    pthread_join(flush_thread, NULL);
    flush();
    if (out_fd >= 0)
        close(out_fd);
    out_fd = -1;
}

/* ---- set-up ------------------------------------------------------------------------------ */

static bool load_sites(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t capacity = 256;
    sites = malloc(capacity * sizeof *sites);
    char line[256];
    while (sites && fgets(line, sizeof line, f)) {
        struct site s = { 0 };
        uint32_t a, b, c;
        int fields = sscanf(line, "S %" SCNx32 " %" SCNu32 " %" SCNu32 " %" SCNu32 " %" SCNd32 " %" SCNu32
                            " %" SCNu32 " %" SCNu32 " %" SCNu32, &s.address, &s.flags, &s.target_kind,
                            &s.target_reg, &s.target_offset, &s.condition, &s.marker_reg, &s.marker_offset,
                            &s.marker_size);
        if (fields == 9 && (s.marker_reg >= REGISTERS || s.marker_size > 4))
            s.marker_size = 0;
        if (fields == 6 || fields == 9) {
            if (site_count == capacity)
                sites = realloc(sites, (capacity *= 2) * sizeof *sites);
            if (sites)
                sites[site_count++] = s;
        } else if (sscanf(line, "W %" SCNx32 " %" SCNu32, &a, &b) == 2 && b <= 8 &&
                   watch_count < sizeof watches / sizeof watches[0]) {
            watches[watch_count++] = (struct watch){ .address = a, .size = b };
        } else if (sscanf(line, "T %" SCNx32 " %" SCNu32 " %" SCNu32, &a, &b, &c) == 3) {
            task_pointer = a, task_name_offset = b, task_name_length = c;
        }
    }
    fclose(f);
    if (!sites)
        return false;
    qsort(sites, site_count, sizeof *sites, compare_sites);
    return true;
}

__attribute__((visibility("default")))
int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    const char *out = NULL, *site_file = NULL;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "out=", 4) == 0)
            out = argv[i] + 4;
        else if (strncmp(argv[i], "sites=", 6) == 0)
            site_file = argv[i] + 6;
        else if (strncmp(argv[i], "window=", 7) == 0)
            window = (uint32_t)strtoul(argv[i] + 7, NULL, 0) & ~3u;
        else if (strncmp(argv[i], "stack_top=", 10) == 0)
            stack_top = (uint32_t)strtoul(argv[i] + 10, NULL, 0);
    }
    if (!out || !site_file || strcmp(info->target_name, "arm") != 0 || window > 4096) {
        qemu_plugin_outs("irqmon recorder: needs out=PATH sites=PATH on an arm system target\n");
        return -1;
    }
    if (!load_sites(site_file)) {
        qemu_plugin_outs("irqmon recorder: cannot read the sites file\n");
        return -1;
    }
    out_fd = open(out, O_WRONLY | O_CLOEXEC);
    if (out_fd < 0) {
        qemu_plugin_outs("irqmon recorder: cannot open the output\n");
        return -1;
    }
    headers = malloc(CHUNK_RECORDS * sizeof *headers);
    windows = malloc(CHUNK_RECORDS * 2 * (size_t)window);
    scratch = g_byte_array_new();
    retired = (qemu_plugin_u64){ qemu_plugin_scoreboard_new(sizeof(uint64_t)), 0 };
    if (!headers || !windows || !scratch)
        return -1;
    if (pthread_create(&flush_thread, NULL, flusher, NULL) != 0)
        return -1;
    qemu_plugin_register_vcpu_init_cb(id, on_vcpu_init);
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translation);
    qemu_plugin_register_atexit_cb(id, on_atexit, NULL);
    return 0;
}

/* Minimal newlib system calls: the heap grows from `end` to below the main stack. */
#include <errno.h>
#include <stddef.h>
#include <sys/stat.h>

extern char end, __heap_limit;
static char *heap_top = &end;

void *_sbrk(ptrdiff_t increment)
{
    char *prev = heap_top;
    if (heap_top + increment > &__heap_limit) {
        errno = ENOMEM;
        return (void *)-1;
    }
    heap_top += increment;
    return prev;
}

int _close(int fd) { (void)fd; return -1; }
int _fstat(int fd, struct stat *st) { (void)fd; st->st_mode = S_IFCHR; return 0; }
int _isatty(int fd) { (void)fd; return 1; }
int _lseek(int fd, int off, int whence) { (void)fd; (void)off; (void)whence; return 0; }
int _read(int fd, char *buf, int len) { (void)fd; (void)buf; (void)len; return 0; }
int _getpid(void) { return 1; }
int _kill(int pid, int sig) { (void)pid; (void)sig; errno = EINVAL; return -1; }
void _exit(int status) { (void)status; for (;;) {} }

/* Samples that print through newlib (printf, puts) provide their own _write. */
__attribute__((weak)) int _write(int fd, const char *buf, int len)
{
    extern void uart_putc(char c);
    (void)fd;
    for (int i = 0; i < len; i++)
        uart_putc(buf[i]);
    return len;
}

/* launch.c — background MPI jobs and the thread that relays their output (see launch.h). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "events.h"
#include "launch.h"
#include "r1.h"
#include "relay.h"

struct launch_job {
    int id;
    pid_t pid;
    char *command;
    const lua_r1_observer *obs;
    int out, err;          /* the read ends of the job's stdout and stderr */
    int ended, status;     /* status: exit status, or 128 + signal */
    double t0;
    struct launch_job *next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static launch_job *jobs;
static int next_id = 1;

/* ------------------------------------------------------------------ output */

/* A line of the job's (without its newline) to the output pane, or stdout headless. */
static void show(const char *s, size_t n)
{
    if (ev_sink_active()) {
        ev *e = ev_new(EV_PRINT);
        char *t = e ? malloc(n + 2) : NULL;
        if (!t) {
            free(e);
            return;
        }
        memcpy(t, s, n);
        t[n] = '\n', t[n + 1] = 0;
        e->text = t;
        e->n = 1; /* a background job's: never a notebook cell's output */
        ev_post(e);
    } else {
        flockfile(stdout);
        fwrite(s, 1, n, stdout);
        putc('\n', stdout);
        fflush(stdout);
        funlockfile(stdout);
    }
}

static void showf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void showf(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0)
        show(buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

typedef struct {
    char *b;
    size_t n, cap;
} linebuf;

/* Appends bytes and hands over every complete line; a line longer than 1 MiB is cut. */
static void feed(launch_job *j, linebuf *lb, const char *s, size_t n, int flush)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\n' && lb->n < (1u << 20)) {
            if (lb->n == lb->cap) {
                size_t cap = lb->cap ? lb->cap * 2 : 4096;
                char *b = realloc(lb->b, cap);
                if (!b)
                    continue;
                lb->b = b, lb->cap = cap;
            }
            lb->b[lb->n++] = s[i];
            continue;
        }
        if (s[i] != '\n')
            continue; /* past the cut: dropped up to the newline */
        if (relay_line(lb->b ? lb->b : "", lb->n, j->obs) == 0)
            show(lb->b ? lb->b : "", lb->n);
        lb->n = 0;
    }
    if (flush && lb->n) {
        if (relay_line(lb->b, lb->n, j->obs) == 0)
            show(lb->b, lb->n);
        lb->n = 0;
    }
}

static void free_job(launch_job *j)
{
    free(j->command);
    free(j);
}

/* Unlinks j (mu held). */
static void unlink_job(launch_job *j)
{
    for (launch_job **p = &jobs; *p; p = &(*p)->next)
        if (*p == j) {
            *p = j->next;
            return;
        }
}

static void *reader(void *arg)
{
    launch_job *j = arg;
    linebuf lb[2] = {{0}, {0}};
    struct pollfd pf[2] = {{j->out, POLLIN, 0}, {j->err, POLLIN, 0}};
    int open_fds = 2;
    char buf[65536];
    while (open_fds > 0) {
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int k = 0; k < 2; k++) {
            if (pf[k].fd < 0 || !(pf[k].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t r = read(pf[k].fd, buf, sizeof buf);
            if (r < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (r <= 0) {
                feed(j, &lb[k], "", 0, 1);
                close(pf[k].fd);
                pf[k].fd = -1;
                open_fds--;
                continue;
            }
            feed(j, &lb[k], buf, (size_t)r, 0);
        }
    }
    free(lb[0].b), free(lb[1].b);
    int ws = 0;
    while (waitpid(j->pid, &ws, 0) < 0 && errno == EINTR)
        ;
    int status = WIFEXITED(ws) ? WEXITSTATUS(ws) : WIFSIGNALED(ws) ? 128 + WTERMSIG(ws) : 1;
    showf("r1lab: job %d ended with exit status %d after %.1f s (%s)", j->id, status,
          r1_now() - j->t0, j->command);
    pthread_mutex_lock(&mu);
    j->status = status;
    j->ended = 1;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&mu);
    return NULL;
}

/* ------------------------------------------------------------------ starting */

/* 1 when prog is a path or found on PATH as an executable */
static int on_path(const char *prog)
{
    if (strchr(prog, '/'))
        return access(prog, X_OK) == 0;
    const char *path = getenv("PATH");
    for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
        size_t n = strcspn(p, ":");
        char f[4096];
        snprintf(f, sizeof f, "%.*s/%s", (int)n, n ? p : ".", prog);
        if (access(f, X_OK) == 0)
            return 1;
        p += n + (p[n] == ':');
    }
    return 0;
}

static char *join(char **argv)
{
    size_t n = 1;
    for (int i = 0; argv[i]; i++)
        n += strlen(argv[i]) + 3;
    char *s = malloc(n), *p = s;
    for (int i = 0; s && argv[i]; i++) {
        int q = argv[i][strcspn(argv[i], " \t'\"")] != 0;
        p += sprintf(p, i ? (q ? " '%s'" : " %s") : "%s", argv[i]);
    }
    return s;
}

launch_job *launch_start(const launch_opts *o, const lua_r1_observer *obs, char *err,
                         size_t cap)
{
    struct stat sb;
    if (o->np < 1 || o->np > 4096) {
        snprintf(err, cap, "np %d: expected 1 to 4096 ranks", o->np);
        return NULL;
    }
    if (!o->script || stat(o->script, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        snprintf(err, cap, "%s: %s", o->script ? o->script : "script",
                 !o->script ? "a Lua file to run is required"
                 : errno && stat(o->script, &sb) != 0 ? strerror(errno) : "not a regular file");
        return NULL;
    }
    const char *mpirun = o->mpirun ? o->mpirun : getenv("R1LAB_MPIRUN");
    if (!mpirun || !*mpirun)
        mpirun = "mpirun";
    if (!on_path(mpirun)) {
        snprintf(err, cap, "%s is not installed (apt-get install openmpi-bin, or set "
                 "R1LAB_MPIRUN)", mpirun);
        return NULL;
    }
    char exe[4096];
    ssize_t el = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (el <= 0) {
        snprintf(err, cap, "cannot find this program (/proc/self/exe): %s", strerror(errno));
        return NULL;
    }
    exe[el] = 0;
    /* mpirun -np N [--oversubscribe] -x R1LAB_EVENTS=1 [-x R1LAB_THREADS=T] [--hostfile H]
     * EXTRA... r1lab run SCRIPT ARGS... */
    size_t na = 16 + (size_t)o->nextra + (size_t)o->nargs;
    char **argv = calloc(na, sizeof(char *));
    char np[16], th[48];
    if (!argv) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    snprintf(np, sizeof np, "%d", o->np);
    snprintf(th, sizeof th, "R1LAB_THREADS=%d", o->threads);
    int a = 0;
    argv[a++] = (char *)mpirun;
    argv[a++] = "-np";
    argv[a++] = np;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (!o->hostfile && o->np > cores) /* more ranks than this machine's cores */
        argv[a++] = "--oversubscribe";
    argv[a++] = "-x";
    argv[a++] = RELAY_ENV "=1";
    if (o->threads > 0) {
        argv[a++] = "-x";
        argv[a++] = th;
    }
    if (o->hostfile) {
        argv[a++] = "--hostfile";
        argv[a++] = (char *)o->hostfile;
    }
    for (int i = 0; i < o->nextra; i++)
        argv[a++] = (char *)o->extra[i];
    argv[a++] = exe;
    argv[a++] = "run";
    argv[a++] = (char *)o->script;
    for (int i = 0; i < o->nargs; i++)
        argv[a++] = (char *)o->args[i];
    argv[a] = NULL;
    launch_job *j = calloc(1, sizeof *j);
    int po[2] = {-1, -1}, pe[2] = {-1, -1};
    if (!j || !(j->command = join(argv)) || pipe2(po, O_CLOEXEC) || pipe2(pe, O_CLOEXEC)) {
        snprintf(err, cap, "cannot start %s: %s", mpirun, j ? strerror(errno) : "out of memory");
        goto fail;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, cap, "cannot start %s: fork: %s", mpirun, strerror(errno));
        goto fail;
    }
    if (pid == 0) { /* the child: its own process group, no terminal input */
        setpgid(0, 0);
        signal(SIGINT, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0)
            dup2(nul, 0);
        dup2(po[1], 1);
        dup2(pe[1], 2);
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execvp(argv[0], argv);
        dprintf(2, "r1lab: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid); /* also here: whichever runs first */
    close(po[1]);
    close(pe[1]);
    free(argv);
    j->pid = pid;
    j->obs = obs;
    j->out = po[0];
    j->err = pe[0];
    j->t0 = r1_now();
    pthread_mutex_lock(&mu);
    j->id = next_id++;
    launch_job **end = &jobs; /* the list in the order started */
    while (*end)
        end = &(*end)->next;
    *end = j;
    pthread_mutex_unlock(&mu);
    pthread_t t;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &at, reader, j);
    pthread_attr_destroy(&at);
    if (rc != 0) { /* nobody could read it: stop it */
        kill(-pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(j->out), close(j->err);
        pthread_mutex_lock(&mu);
        unlink_job(j);
        pthread_mutex_unlock(&mu);
        free_job(j);
        snprintf(err, cap, "cannot start a thread to read the job: %s", strerror(rc));
        return NULL;
    }
    showf("r1lab: job %d started (%s)", j->id, j->command);
    return j;
fail:
    for (int k = 0; k < 2; k++) {
        if (po[k] >= 0)
            close(po[k]);
        if (pe[k] >= 0)
            close(pe[k]);
    }
    free(argv);
    if (j)
        free_job(j);
    return NULL;
}

/* ------------------------------------------------------------------ watching and stopping */

int launch_id(const launch_job *j)
{
    return j->id;
}

const char *launch_command(const launch_job *j)
{
    return j->command;
}

int launch_poll(launch_job *j, int *status)
{
    pthread_mutex_lock(&mu);
    int running = !j->ended;
    if (!running && status)
        *status = j->status;
    pthread_mutex_unlock(&mu);
    return running;
}

int launch_wait(launch_job *j, int timeout_ms, int (*stop)(void), int *status)
{
    double end = r1_now() + timeout_ms / 1000.0;
    pthread_mutex_lock(&mu);
    int rc = 0;
    while (!j->ended) {
        if (stop && stop()) {
            rc = 2;
            break;
        }
        double now = r1_now();
        if (timeout_ms >= 0 && now >= end) {
            rc = 1;
            break;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100000000; /* 100 ms, then stop is asked again */
        if (ts.tv_nsec >= 1000000000)
            ts.tv_sec++, ts.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&changed, &mu, &ts);
    }
    if (rc == 0 && status)
        *status = j->status;
    pthread_mutex_unlock(&mu);
    return rc;
}

void launch_stop(launch_job *j)
{
    /* mpirun and the ranks on this machine; mpirun stops the others */
    if (launch_signal(j, SIGTERM) == 0 && launch_wait(j, 5000, NULL, NULL) == 1)
        launch_signal(j, SIGKILL);
}

void launch_list(char *buf, size_t cap)
{
    size_t k = 0;
    if (cap)
        buf[0] = 0;
    pthread_mutex_lock(&mu);
    for (launch_job *j = jobs; j && k < cap; j = j->next) {
        char st[48];
        if (j->ended)
            snprintf(st, sizeof st, "ended, exit status %d", j->status);
        else
            snprintf(st, sizeof st, "running %.0f s", r1_now() - j->t0);
        int w = snprintf(buf + k, cap - k, "job %d: %s: %s\n", j->id, st, j->command);
        if (w < 0)
            break;
        k += (size_t)w;
    }
    pthread_mutex_unlock(&mu);
}

launch_job *launch_find(int id)
{
    pthread_mutex_lock(&mu);
    launch_job *j = jobs;
    while (j && j->id != id)
        j = j->next;
    pthread_mutex_unlock(&mu);
    return j;
}

int launch_signal(launch_job *j, int sig)
{
    pthread_mutex_lock(&mu);
    int running = !j->ended;
    pid_t pid = j->pid;
    pthread_mutex_unlock(&mu);
    return running && kill(-pid, sig) == 0 ? 0 : -1;
}

void launch_stop_all(void)
{
    for (;;) {
        pthread_mutex_lock(&mu);
        launch_job *j = jobs;
        while (j && j->ended)
            j = j->next;
        pthread_mutex_unlock(&mu);
        if (!j)
            return;
        launch_stop(j);
        launch_wait(j, 2000, NULL, NULL);
        pthread_mutex_lock(&mu);
        int stuck = !j->ended;
        if (stuck) /* not even SIGKILL ended it in 7 s: leave it, do not loop */
            j->ended = 1, j->status = 137;
        pthread_mutex_unlock(&mu);
    }
}

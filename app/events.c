/* events.c — the worker → UI event queue (see events.h): a mutex-protected FIFO plus a
 * self-pipe that wakes the UI thread's poll().  Drops events when no sink is active. */
#include <config.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "events.h"

typedef struct node {
    ev *e;
    struct node *next;
} node;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static node *head, *tail;
static int active;
static int pipefd[2] = {-1, -1};

int ev_sink(int on)
{
    pthread_mutex_lock(&mu);
    if (on && pipefd[0] < 0) {
        if (pipe(pipefd) == 0) {
            fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
            fcntl(pipefd[1], F_SETFL, O_NONBLOCK);
        } else {
            pipefd[0] = pipefd[1] = -1;
        }
    }
    active = on && pipefd[0] >= 0;
    int fd = active ? pipefd[0] : -1;
    pthread_mutex_unlock(&mu);
    if (!on) { /* drain what is left */
        ev *e;
        while ((e = ev_take()))
            ev_free(e);
    }
    return fd;
}

int ev_sink_active(void)
{
    pthread_mutex_lock(&mu);
    int a = active;
    pthread_mutex_unlock(&mu);
    return a;
}

ev *ev_new(ev_kind kind)
{
    ev *e = calloc(1, sizeof *e);
    if (e)
        e->kind = kind;
    return e;
}

int ev_alloc_routing(ev *e, int n_moe, int K)
{
    n_moe = n_moe < EV_MAX_MOE ? n_moe : EV_MAX_MOE;
    K = K < EV_MAX_K ? K : EV_MAX_K;
    if (n_moe <= 0 || K <= 0)
        return 0;
    size_t nk = (size_t)n_moe * (size_t)K;
    /* ints, then int32s, then floats: every part 4-byte aligned */
    unsigned char *b = calloc(1, sizeof(int) * (size_t)n_moe + (sizeof(int32_t) + sizeof(float)) * nk);
    if (!b)
        return -1;
    e->moe_layers = (int *)b;
    e->experts = (int32_t *)(b + sizeof(int) * (size_t)n_moe);
    e->weights = (float *)(b + sizeof(int) * (size_t)n_moe + sizeof(int32_t) * nk);
    e->n_moe = n_moe;
    e->K = K;
    return 0;
}

int ev_alloc_stats(ev *e, int n)
{
    n = n < EV_MAX_STATS ? n : EV_MAX_STATS;
    e->nstats = 0;
    e->stats = n > 0 ? calloc((size_t)n, sizeof *e->stats) : NULL;
    return n > 0 && !e->stats ? -1 : 0;
}

int ev_alloc_view(ev *e, int rows, int cols, int nlabels)
{
    rows = rows > 0 ? rows : 0;
    cols = cols > 0 ? cols : 0;
    e->vals = calloc((size_t)rows * cols + 1, sizeof(float));
    e->labels = calloc((size_t)nlabels + 1, sizeof(char *));
    if (!e->vals || !e->labels) {
        free(e->vals), free(e->labels);
        e->vals = NULL, e->labels = NULL;
        return -1;
    }
    e->rows = rows, e->cols = cols, e->nlabels = nlabels;
    return 0;
}

ev *ev_copy_view(const ev *e)
{
    if (!e || e->kind != EV_VIEW)
        return NULL;
    ev *c = ev_new(EV_VIEW);
    if (!c || ev_alloc_view(c, e->rows, e->cols, e->nlabels) != 0) {
        free(c);
        return NULL;
    }
    c->view = e->view;
    memcpy(c->vals, e->vals, sizeof(float) * (size_t)e->rows * e->cols);
    memcpy(c->ints, e->ints, sizeof c->ints);
    memcpy(c->nums, e->nums, sizeof c->nums);
    c->text = e->text ? strdup(e->text) : NULL;
    for (int i = 0; i < e->nlabels; i++)
        c->labels[i] = e->labels[i] ? strdup(e->labels[i]) : NULL;
    return c;
}

void ev_free(ev *e)
{
    if (!e)
        return;
    free(e->text);
    if (e->kind == EV_TOKEN) {
        free(e->moe_layers); /* the routing's one block */
    } else if (e->kind == EV_STEP) {
        free(e->stats);
        free(e->load);
        free(e->bias);
    } else if (e->kind == EV_VIEW) {
        free(e->vals);
        for (int i = 0; e->labels && i < e->nlabels; i++)
            free(e->labels[i]);
        free(e->labels);
    } else if (e->kind == EV_GROUP) {
        for (int i = 0; e->completions && i < e->n; i++)
            free(e->completions[i].text);
        free(e->completions);
    }
    free(e);
}

void ev_post(ev *e)
{
    if (!e)
        return;
    node *n = malloc(sizeof *n);
    pthread_mutex_lock(&mu);
    if (!active || !n) {
        pthread_mutex_unlock(&mu);
        free(n);
        ev_free(e);
        return;
    }
    n->e = e;
    n->next = NULL;
    if (tail)
        tail->next = n;
    else
        head = n;
    tail = n;
    char one = 1;
    ssize_t w = write(pipefd[1], &one, 1); /* a full pipe already means "wake up" */
    (void)w;
    pthread_mutex_unlock(&mu);
}

void ev_print(const char *text, size_t len)
{
    if (!ev_sink_active())
        return;
    ev *e = ev_new(EV_PRINT);
    if (!e)
        return;
    e->text = malloc(len + 1);
    if (!e->text) {
        ev_free(e);
        return;
    }
    memcpy(e->text, text, len);
    e->text[len] = '\0';
    ev_post(e);
}

ev *ev_take(void)
{
    pthread_mutex_lock(&mu);
    node *n = head;
    ev *e = NULL;
    if (n) {
        head = n->next;
        if (!head)
            tail = NULL;
        e = n->e;
    } else if (pipefd[0] >= 0) {
        char buf[256];
        while (read(pipefd[0], buf, sizeof buf) > 0)
            ; /* empty queue: clear the wake-ups */
    }
    pthread_mutex_unlock(&mu);
    free(n);
    return e;
}

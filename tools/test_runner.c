/* Case discovery and the process-isolated scheduler of `ember test` (see test_runner.h). */
#include "test_runner.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Case folders deeper than this below a PATH argument are not searched. */
#define MAX_SEARCH_DEPTH 8

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static bool is_directory(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_case_folder(const char *path) {
    char model[PATH_MAX];
    struct stat st;
    if (snprintf(model, sizeof model, "%s/model.onnx", path) < (int)sizeof model &&
        stat(model, &st) == 0)
        return true;
    DIR *d = opendir(path);
    if (!d) return false;
    bool found = false;
    struct dirent *entry;
    while (!found && (entry = readdir(d)) != NULL)
        found = strncmp(entry->d_name, "test_data_set_", 14) == 0;
    closedir(d);
    return found;
}

static bool add_case(test_case_list *list, const char *path) {
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 256;
        test_case *items = realloc(list->items, capacity * sizeof *items);
        if (!items) return false;
        list->items = items;
        list->capacity = capacity;
    }
    size_t length = strlen(path);
    while (length > 1 && path[length - 1] == '/') length--;
    const char *base = path + length;
    while (base > path && base[-1] != '/') base--;
    test_case *item = &list->items[list->count];
    memset(item, 0, sizeof *item);
    item->path = strndup(path, length);
    item->name = strndup(base, (size_t)(path + length - base));
    if (!item->path || !item->name) {
        free(item->path);
        free(item->name);
        return false;
    }
    list->count++;
    return true;
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool discover(const char *path, test_case_list *list, int depth) {
    if (is_case_folder(path)) {
        if (add_case(list, path)) return true;
        fprintf(stderr, "ember: out of memory\n");
        return false;
    }
    if (depth >= MAX_SEARCH_DEPTH) return true;
    DIR *d = opendir(path);
    if (!d) return true; /* unreadable subfolders hold no cases we can run */
    char **names = NULL;
    size_t count = 0, capacity = 0;
    bool ok = true;
    struct dirent *entry;
    while (ok && (entry = readdir(d)) != NULL) {
        if (entry->d_name[0] == '.') continue;
        char child[PATH_MAX];
        if (snprintf(child, sizeof child, "%s/%s", path, entry->d_name) >= (int)sizeof child ||
            !is_directory(child))
            continue;
        if (count == capacity) {
            capacity = capacity ? capacity * 2 : 64;
            char **grown = realloc(names, capacity * sizeof *names);
            if (!grown) {
                ok = false;
                break;
            }
            names = grown;
        }
        names[count] = strdup(child);
        if (!names[count]) ok = false;
        else count++;
    }
    closedir(d);
    if (!ok) fprintf(stderr, "ember: out of memory\n");
    qsort(names, count, sizeof *names, compare_names);
    for (size_t i = 0; ok && i < count; i++) ok = discover(names[i], list, depth + 1);
    for (size_t i = 0; i < count; i++) free(names[i]);
    free(names);
    return ok;
}

bool runner_discover(const char *path, test_case_list *list) {
    if (!is_directory(path)) {
        fprintf(stderr, "ember: %s: not a folder\n", path);
        return false;
    }
    return discover(path, list, 0);
}

void runner_free_cases(test_case_list *list) {
    for (size_t i = 0; i < list->count; i++) {
        free(list->items[i].name);
        free(list->items[i].path);
    }
    free(list->items);
    list->items = NULL;
    list->count = list->capacity = 0;
}

static void write_all(int fd, const void *data, size_t size) {
    const char *p = data;
    while (size > 0) {
        ssize_t n = write(fd, p, size);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        p += n;
        size -= (size_t)n;
    }
}

/* In the child: run the case and send the record; never returns. */
static void child_main(const test_case *item, int fd) {
    int null_fd = open("/dev/null", O_WRONLY);
    if (null_fd >= 0) {
        dup2(null_fd, STDOUT_FILENO); /* the report on stdout belongs to the parent */
        close(null_fd);
    }
    case_record *record = malloc(sizeof *record);
    if (!record) _exit(3);
    case_run(item->path, &item->options, record);
    write_all(fd, record, sizeof *record);
    close(fd);
    free(record);
    _exit(0);
}

typedef struct slot {
    size_t index;      /* case index */
    pid_t pid;
    int fd;
    double started;
    size_t received;
    bool timed_out;
    case_record *buffer;
} slot;

static void set_error(test_case *item, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_error(test_case *item, const char *fmt, ...) {
    case_record_init(&item->record, &item->options);
    item->record.status = CASE_ERROR;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(item->record.message, sizeof item->record.message, fmt, ap);
    va_end(ap);
}

static bool start_case(test_case *cases, slot *s, size_t index) {
    int fds[2];
    if (pipe(fds) != 0) {
        set_error(&cases[index], "cannot create a pipe: %s", strerror(errno));
        return false;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        set_error(&cases[index], "cannot fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return false;
    }
    if (pid == 0) {
        close(fds[0]);
        child_main(&cases[index], fds[1]);
    }
    close(fds[1]);
    s->index = index;
    s->pid = pid;
    s->fd = fds[0];
    s->started = now_seconds();
    s->received = 0;
    s->timed_out = false;
    return true;
}

static void finish_case(test_case *cases, slot *s, double timeout) {
    test_case *item = &cases[s->index];
    close(s->fd);
    int status = 0;
    while (waitpid(s->pid, &status, 0) < 0 && errno == EINTR) {
    }
    item->seconds = now_seconds() - s->started;
    if (s->timed_out) {
        set_error(item, "timed out after %g s", timeout);
    } else if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        set_error(item, "crashed with signal %d (%s)", sig, strsignal(sig));
    } else if (s->received != sizeof(case_record) || !WIFEXITED(status) ||
               WEXITSTATUS(status) != 0) {
        set_error(item, "the case process exited with status %d without a result",
                  WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    } else {
        item->record = *s->buffer;
    }
}

/* Report finished cases in list order. */
static void report_ready(test_case *cases, const bool *done, size_t count, size_t *next,
                         const runner_options *options) {
    while (*next < count && done[*next]) {
        if (options->on_done) options->on_done(&cases[*next], options->context);
        (*next)++;
    }
}

static bool run_in_process(test_case *cases, size_t count, const runner_options *options) {
    for (size_t i = 0; i < count; i++) {
        double started = now_seconds();
        case_run(cases[i].path, &cases[i].options, &cases[i].record);
        cases[i].seconds = now_seconds() - started;
        if (options->on_done) options->on_done(&cases[i], options->context);
    }
    return true;
}

bool runner_run(test_case *cases, size_t count, const runner_options *options) {
    if (!options->isolate) return run_in_process(cases, count, options);
    int jobs = options->jobs > 0 ? options->jobs : 1;
    slot *slots = calloc((size_t)jobs, sizeof *slots);
    struct pollfd *pfds = calloc((size_t)jobs, sizeof *pfds);
    bool *done = calloc(count ? count : 1, sizeof *done);
    bool ok = slots && pfds && done;
    for (int j = 0; ok && j < jobs; j++) {
        slots[j].buffer = malloc(sizeof(case_record));
        if (!slots[j].buffer) ok = false;
    }
    if (!ok) {
        fprintf(stderr, "ember: out of memory\n");
        for (size_t i = 0; i < count; i++) set_error(&cases[i], "not run: out of memory");
    }
    size_t next_case = 0, next_report = 0;
    int active = 0;
    while (ok && (next_case < count || active > 0)) {
        while (active < jobs && next_case < count) {
            size_t index = next_case++;
            if (start_case(cases, &slots[active], index)) {
                active++;
            } else {
                ok = false; /* fork/pipe failing means the system is out of resources */
                done[index] = true;
            }
        }
        double now = now_seconds();
        int wait_ms = -1;
        for (int j = 0; j < active; j++) {
            pfds[j].fd = slots[j].fd;
            pfds[j].events = POLLIN;
            pfds[j].revents = 0;
            if (options->timeout_seconds > 0) {
                double left = slots[j].started + options->timeout_seconds - now;
                int ms = left <= 0 ? 0 : (int)(left * 1000) + 1;
                if (wait_ms < 0 || ms < wait_ms) wait_ms = ms;
            }
        }
        if (active == 0) break;
        int ready = poll(pfds, (nfds_t)active, wait_ms);
        if (ready < 0 && errno != EINTR) {
            fprintf(stderr, "ember: poll: %s\n", strerror(errno));
            ok = false;
        }
        now = now_seconds();
        for (int j = 0; j < active;) {
            slot *s = &slots[j];
            bool finished = false;
            if (ready > 0 && (pfds[j].revents & (POLLIN | POLLHUP | POLLERR))) {
                char scratch[4096];
                char *target = (char *)s->buffer + s->received;
                size_t room = sizeof(case_record) - s->received;
                ssize_t n = room ? read(s->fd, target, room) : read(s->fd, scratch, sizeof scratch);
                if (n > 0 && room) s->received += (size_t)n;
                else if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) finished = true;
            }
            if (!finished && options->timeout_seconds > 0 &&
                now - s->started >= options->timeout_seconds) {
                kill(s->pid, SIGKILL);
                s->timed_out = true;
                finished = true;
            }
            if (!finished) {
                j++;
                continue;
            }
            finish_case(cases, s, options->timeout_seconds);
            done[s->index] = true;
            /* Move the last active slot here; pfds are rebuilt before the next poll. */
            active--;
            if (j != active) {
                case_record *buffer = s->buffer;
                *s = slots[active];
                pfds[j] = pfds[active];
                slots[active].buffer = buffer;
            }
        }
        report_ready(cases, done, count, &next_report, options);
    }
    /* After a runner failure: stop the children still running, mark the rest as not run. */
    for (int j = 0; j < active; j++) {
        kill(slots[j].pid, SIGKILL);
        slots[j].timed_out = false;
        finish_case(cases, &slots[j], options->timeout_seconds);
        set_error(&cases[slots[j].index], "not run: the runner stopped");
        done[slots[j].index] = true;
    }
    for (size_t i = 0; done && i < count; i++) {
        if (!done[i]) {
            set_error(&cases[i], "not run: the runner stopped");
            done[i] = true;
        }
    }
    if (done) report_ready(cases, done, count, &next_report, options);
    for (int j = 0; slots && j < jobs; j++) free(slots[j].buffer);
    free(slots);
    free(pfds);
    free(done);
    return ok;
}

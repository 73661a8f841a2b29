/* sim_csv — see sim_csv.h. */
#include "sim_csv.h"

#include <errno.h>
#include <float.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

wl_status sim_csv_open(sim_csv *c, const char *path, char *err, size_t err_size)
{
  memset(c, 0, sizeof *c);
  c->path = path;
  /* O_NONBLOCK: a FIFO must not block the open; the checks below refuse it anyway */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, err_size, "%s: cannot open: %s", path, strerror(errno));
    return WL_EIO;
  }
  struct stat sb;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    snprintf(err, err_size, "%s: expected a regular file (not a directory, device or pipe)",
             path);
    close(fd);
    return WL_ECONFIG;
  }
  if (sb.st_size > SIM_CSV_MAX_BYTES) {
    snprintf(err, err_size, "%s: expected at most %ld MiB, got %lld bytes", path,
             SIM_CSV_MAX_BYTES >> 20, (long long)sb.st_size);
    close(fd);
    return WL_ECONFIG;
  }
  int flags = fcntl(fd, F_GETFL);
  if (flags >= 0)
    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  if (!(c->f = fdopen(fd, "r"))) {
    snprintf(err, err_size, "%s: %s", path, strerror(errno));
    close(fd);
    return WL_EIO;
  }
  return WL_OK;
}

static char *trim(char *s)
{
  while (*s == ' ' || *s == '\t')
    s++;
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
    s[--n] = '\0';
  return s;
}

int sim_csv_next(sim_csv *c, const char *header, char *err, size_t err_size)
{
  ssize_t got;
  while ((got = getline(&c->buf, &c->cap, c->f)) >= 0) {
    char *buf = c->buf;
    c->lineno++;
    size_t len = (size_t)got;
    if (memchr(buf, '\0', len)) {
      snprintf(err, err_size, "%s:%d: expected text, got a NUL byte", c->path, c->lineno);
      return -1;
    }
    if (len > 0 && buf[len - 1] == '\n')
      len--;
    if (len > 0 && buf[len - 1] == '\r')
      len--;
    if (memchr(buf, '\r', len)) { /* a line break this reader would not see as one */
      snprintf(err, err_size, "%s:%d: expected lines ending in LF or CRLF, got a lone CR "
               "(a file with old Mac line endings?)", c->path, c->lineno);
      return -1;
    }
    if (c->lineno == 1 && len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0) {
      snprintf(err, err_size, "%s:1: expected text without a byte-order mark (BOM) at its "
               "start", c->path);
      return -1;
    }
    if (len > SIM_CSV_MAX_LINE) {
      snprintf(err, err_size, "%s:%d: expected a line of at most %d characters", c->path,
               c->lineno, SIM_CSV_MAX_LINE);
      return -1;
    }
    memcpy(c->line, buf, len);
    c->line[len] = '\0';
    char *s = trim(c->line);
    if (*s == '\0' || *s == '#')
      continue;
    memcpy(c->raw, s, strlen(s) + 1);
    c->n_fields = 0;
    for (char *p = s;;) {
      char *comma = strchr(p, ',');
      if (comma)
        *comma = '\0';
      if (c->n_fields == SIM_CSV_MAX_FIELDS) {
        snprintf(err, err_size, "%s:%d: expected at most %d fields", c->path, c->lineno,
                 SIM_CSV_MAX_FIELDS);
        return -1;
      }
      c->field[c->n_fields++] = trim(p);
      if (!comma)
        break;
      p = comma + 1;
    }
    int first = !c->seen_data;
    c->seen_data = 1;
    if (first && strcmp(c->field[0], header) == 0) /* the header */
      continue;
    return 1;
  }
  if (ferror(c->f)) {
    snprintf(err, err_size, "%s: read error: %s", c->path, strerror(errno));
    return -1;
  }
  return 0;
}

int sim_csv_number(const char *field, double *out)
{
  if (*field == '\0')
    return 0;
  char *end;
  errno = 0;
  *out = strtod(field, &end);
  /* only decimals: strtod would also take inf, nan and hexadecimal */
  for (const char *p = field; p < end; p++)
    if (!strchr("0123456789+-.eE", *p))
      return 0;
  /* (not overflow; an underflow is the tiny number it is) */
  return *end == '\0' && isfinite(*out) && (errno != ERANGE || fabs(*out) <= DBL_MIN);
}

void sim_csv_close(sim_csv *c)
{
  if (c->f)
    fclose(c->f);
  c->f = NULL;
  free(c->buf);
  c->buf = NULL;
  c->cap = 0;
}

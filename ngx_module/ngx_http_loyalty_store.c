/*
 * nginx-loyalty: the store inside nginx.
 *
 * The master checks the store once at configuration time, without its
 * lock file, then closes it: LMDB handles must not cross fork.  Each
 * worker opens it again (read-only, unless it writes clicks: LMDB allows
 * one environment per process), clears reader slots left by dead
 * processes, and keeps one read transaction that it renews for each lookup
 * and resets right after, so no snapshot is held across requests and
 * writers can reuse pages.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_loyalty_module.h"


#define NGX_HTTP_LOYALTY_STORE_RETRY  1     /* seconds between reopens */


static void ngx_http_loyalty_store_close(ngx_http_loyalty_store_t *store);
static ngx_int_t ngx_http_loyalty_store_ready(ngx_http_loyalty_store_t *store,
    ngx_log_t *log);
static void ngx_http_loyalty_store_epoch(ngx_http_loyalty_store_t *store,
    size_t id);
static ngx_int_t ngx_http_loyalty_store_give(ngx_cycle_t *cycle,
    ngx_http_loyalty_main_conf_t *lmcf, const char *name, ngx_uid_t user,
    ngx_uint_t create);


char *
ngx_http_loyalty_store_conf(ngx_conf_t *cf,
    ngx_http_loyalty_main_conf_t *lmcf)
{
    int                        rc;
    char                       err[LOYALTY_ERRLEN];
    MDB_txn                   *txn;
    loyalty_store_t            st;
    loyalty_tierset_t         *tiers;
    ngx_http_loyalty_store_t  *store;

    store = ngx_pcalloc(cf->pool, sizeof(ngx_http_loyalty_store_t));
    if (store == NULL) {
        return NGX_CONF_ERROR;
    }

    store->path = ngx_pnalloc(cf->pool, lmcf->store_path.len + 1);
    if (store->path == NULL) {
        return NGX_CONF_ERROR;
    }

    (void) ngx_cpystrn(store->path, lmcf->store_path.data,
                       lmcf->store_path.len + 1);

    store->data_path = ngx_pnalloc(cf->pool, lmcf->store_path.len
                                             + sizeof("/data.mdb"));
    if (store->data_path == NULL) {
        return NGX_CONF_ERROR;
    }

    (void) ngx_sprintf(store->data_path, "%V/data.mdb%Z", &lmcf->store_path);

    /*
     * Without the lock file: the master runs as root and must neither
     * create it nor follow a link put in its place.
     */
    if (loyalty_store_open(&st, (char *) store->path,
                           LOYALTY_STORE_RDONLY|LOYALTY_STORE_NOLOCK,
                           err, sizeof(err))
        != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "loyalty_store: %s", err);
        return NGX_CONF_ERROR;
    }

    tiers = ngx_palloc(cf->temp_pool, sizeof(loyalty_tierset_t));
    if (tiers == NULL) {
        loyalty_store_close(&st);
        return NGX_CONF_ERROR;
    }

    /* the request path needs every tier: refuse a store where it cannot */
    rc = mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn);
    if (rc == 0) {
        rc = loyalty_tierset_load(txn, st.dbi[LOYALTY_DB_TIERS], tiers);
        mdb_txn_abort(txn);
    }

    loyalty_store_close(&st);

    if (rc != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "loyalty_store: store \"%s\": cannot read its "
                           "tiers (more than %d, or a damaged one): %s",
                           store->path, LOYALTY_TIERS_MAX, mdb_strerror(rc));
        return NGX_CONF_ERROR;
    }

    lmcf->store = store;

    return NGX_CONF_OK;
}


/*
 * With the master as root, the workers run as another user: nginx -t
 * fails if that user cannot read the store, rather than every request
 * finding no member.  A child process takes the workers' identity (uid,
 * gid and groups, as a worker does) and tries access(2), so that modes,
 * groups and ACLs all count.  The lock file is the master's to give, and
 * so is the data file when the workers write (see init_module): then the
 * directory must only let them through.  Called once every directive is
 * known.
 */

char *
ngx_http_loyalty_store_access(ngx_conf_t *cf, ngx_http_loyalty_store_t *store)
{
    int               status, mode;
    char             *user;
    u_char           *path;
    pid_t             pid;
    sigset_t          chld, old;
    ngx_uid_t         uid;
    ngx_gid_t         gid;
    ngx_err_t         err;
    struct group     *gr;
    struct passwd    *pw;
    ngx_core_conf_t  *ccf;

    if (geteuid() != 0) {
        return NGX_CONF_OK;
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(cf->cycle->conf_ctx,
                                           ngx_core_module);

    if (ccf->user != (ngx_uid_t) NGX_CONF_UNSET_UINT) {
        user = ccf->username;
        uid = ccf->user;
        gid = ccf->group;

    } else {
        /* no "user" before "http": the one nginx defaults to */
        user = NGX_USER;
        pw = getpwnam(NGX_USER);
        gr = getgrnam(NGX_GROUP);

        if (pw == NULL || gr == NULL) {
            return NGX_CONF_OK;     /* nginx itself refuses to go on */
        }

        uid = pw->pw_uid;
        gid = gr->gr_gid;
    }

    if (uid == 0) {
        return NGX_CONF_OK;
    }

    path = store->write ? store->path : store->data_path;
    mode = store->write ? X_OK : R_OK;

    /* the child is reaped here, not by the master's signal handler */
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &old);

    pid = fork();

    if (pid == 0) {
        if (setgid(gid) == -1 || initgroups(user, gid) == -1
            || setuid(uid) == -1)
        {
            _exit(255);
        }

        _exit(access((char *) path, mode) == 0 ? 0
              : (errno > 0 && errno < 255) ? errno : EACCES);
    }

    err = (pid == -1) ? ngx_errno : 0;
    status = 0;

    while (pid > 0 && waitpid(pid, &status, 0) == -1) {
        if (ngx_errno != NGX_EINTR) {
            err = ngx_errno;
            break;
        }
    }

    sigprocmask(SIG_SETMASK, &old, NULL);

    if (err) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, err,
                           "loyalty_store: cannot check that the workers' "
                           "user \"%s\" can read \"%s\"", user, path);
        return NGX_CONF_OK;
    }

    if (!WIFEXITED(status) || WEXITSTATUS(status) == 255) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "loyalty_store: cannot take the workers' user "
                           "\"%s\" to check that it can read \"%s\"",
                           user, path);
        return NGX_CONF_ERROR;
    }

    if (WEXITSTATUS(status) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, WEXITSTATUS(status),
                           "loyalty_store: the workers' user \"%s\" cannot "
                           "read the store \"%s\"; give it read access to "
                           "the directory and its data.mdb", user, path);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * Workers write to the store's lock file (their reader slots), and with
 * loyalty_click_zone to its data file.  The master runs as root and the
 * workers do not, so it makes sure these files belong to the workers'
 * user, as nginx does with its temporary directories.  O_NOFOLLOW: a link
 * in their place is refused.
 */

ngx_int_t
ngx_http_loyalty_store_init_module(ngx_cycle_t *cycle)
{
    ngx_core_conf_t               *ccf;
    ngx_http_loyalty_main_conf_t  *lmcf;

    lmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_loyalty_module);

    if (lmcf == NULL || lmcf->store == NULL || geteuid() != 0) {
        return NGX_OK;
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    if (ccf->user == (ngx_uid_t) NGX_CONF_UNSET_UINT) {
        return NGX_OK;
    }

    if (ngx_http_loyalty_store_give(cycle, lmcf, "lock.mdb", ccf->user, 1)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* with loyalty_click_zone the workers write the clicks themselves */
    if (lmcf->store->write) {
        return ngx_http_loyalty_store_give(cycle, lmcf, "data.mdb",
                                           ccf->user, 0);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_loyalty_store_give(ngx_cycle_t *cycle,
    ngx_http_loyalty_main_conf_t *lmcf, const char *name, ngx_uid_t user,
    ngx_uint_t create)
{
    u_char           *path;
    ngx_fd_t          fd;
    ngx_file_info_t   fi;

    path = ngx_pnalloc(cycle->pool, lmcf->store_path.len + 1
                                    + ngx_strlen(name) + 1);
    if (path == NULL) {
        return NGX_ERROR;
    }

    (void) ngx_sprintf(path, "%V/%s%Z", &lmcf->store_path, name);

    fd = open((char *) path,
              O_RDWR|O_NOFOLLOW|O_CLOEXEC|(create ? O_CREAT : 0), 0664);

    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, ngx_errno,
                      "open(\"%s\") failed, workers may not be able to %s "
                      "the store", path, create ? "read" : "write to");
        return NGX_OK;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR || !ngx_is_file(&fi)) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, ngx_errno,
                      "\"%s\" is not a regular file, workers may not be "
                      "able to use the store", path);

    } else if (fi.st_uid != user && fchown(fd, user, (gid_t) -1) == -1) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, ngx_errno,
                      "fchown(\"%s\", %d) failed, workers may not be able "
                      "to use the store", path, user);
    }

    (void) ngx_close_file(fd);

    return NGX_OK;
}


ngx_int_t
ngx_http_loyalty_store_init_worker(ngx_cycle_t *cycle)
{
    ngx_http_loyalty_main_conf_t  *lmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    lmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_loyalty_module);

    if (lmcf == NULL || lmcf->store == NULL) {
        return NGX_OK;
    }

    if (ngx_http_loyalty_cache_init(lmcf->store, lmcf->member_cache,
                                    cycle->log)
        != NGX_OK
        || ngx_http_loyalty_code_cache_init(lmcf->store, lmcf->code_cache,
                                            cycle->log)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* a store that cannot be opened now is retried by later requests */
    (void) ngx_http_loyalty_store_open(lmcf->store, cycle->log);

    return NGX_OK;
}


void
ngx_http_loyalty_store_exit_worker(ngx_cycle_t *cycle)
{
    ngx_http_loyalty_main_conf_t  *lmcf;

    lmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_loyalty_module);

    if (lmcf && lmcf->store) {
        ngx_http_loyalty_store_close(lmcf->store);
        ngx_http_loyalty_cache_free(lmcf->store);
        ngx_http_loyalty_code_cache_free(lmcf->store);

        if (lmcf->store->rules) {
            ngx_free(lmcf->store->rules);
            lmcf->store->rules = NULL;
        }
    }
}


ngx_int_t
ngx_http_loyalty_store_open(ngx_http_loyalty_store_t *store, ngx_log_t *log)
{
    int                            rc, dead;
    char                           err[LOYALTY_ERRLEN];
    ngx_fd_t                       fd;
    ngx_file_info_t                fi;
    ngx_http_loyalty_main_conf_t  *lmcf;

    store->retry = ngx_time() + NGX_HTTP_LOYALTY_STORE_RETRY;
    store->writable = 0;

    if (store->write) {
        if (loyalty_store_open(&store->st, (char *) store->path, 0, err,
                               sizeof(err))
            == 0)
        {
            store->writable = 1;

        } else {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "loyalty_store: %s; opening it read-only, clicks "
                          "stay counted in memory", err);
        }
    }

    if (!store->writable
        && loyalty_store_open(&store->st, (char *) store->path,
                              LOYALTY_STORE_RDONLY, err, sizeof(err))
           != 0)
    {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "loyalty_store: %s; members cannot be looked up", err);
        return NGX_ERROR;
    }

    /* the shop's days for the counters (loyalty_timezone) */
    lmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_loyalty_module);
    store->st.tz = lmcf ? lmcf->tz : NULL;

    if (mdb_env_get_fd(store->st.env, &fd) == 0
        && ngx_fd_info(fd, &fi) != NGX_FILE_ERROR)
    {
        store->dev = fi.st_dev;
        store->ino = fi.st_ino;
    }

    rc = mdb_reader_check(store->st.env, &dead);
    if (rc != 0) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "loyalty_store \"%s\": mdb_reader_check() failed: %s",
                      store->path, mdb_strerror(rc));

    } else if (dead) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "loyalty_store \"%s\": cleared %d stale readers",
                      store->path, dead);
    }

    rc = mdb_txn_begin(store->st.env, NULL, MDB_RDONLY, &store->txn);
    if (rc != 0) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "loyalty_store \"%s\": mdb_txn_begin() failed: %s",
                      store->path, mdb_strerror(rc));
        loyalty_store_close(&store->st);
        return NGX_ERROR;
    }

    mdb_txn_reset(store->txn);

    store->open = 1;
    store->tiers_txnid = 0;
    ngx_memzero(store->problem_txnid, sizeof(store->problem_txnid));

    /* snapshot ids of another store may coincide: retire cached entries */
    store->gen++;
    store->seen = 0;

    return NGX_OK;
}


static void
ngx_http_loyalty_store_close(ngx_http_loyalty_store_t *store)
{
    if (!store->open) {
        return;
    }

    mdb_txn_abort(store->txn);
    store->txn = NULL;
    loyalty_store_close(&store->st);
    store->open = 0;
}


/* the environment cannot go on: closed, and opened again in a while */
void
ngx_http_loyalty_store_lost(ngx_http_loyalty_store_t *store, ngx_log_t *log,
    const char *what, int rc)
{
    ngx_log_error(NGX_LOG_ERR, log, 0, "loyalty_store \"%s\": %s, "
                  "reopening: %s", store->path, what, mdb_strerror(rc));
    ngx_http_loyalty_store_close(store);
    store->retry = ngx_time() + NGX_HTTP_LOYALTY_STORE_RETRY;
}


/* the store checked (once a second) and open: what begin and peek share */
static ngx_int_t
ngx_http_loyalty_store_ready(ngx_http_loyalty_store_t *store, ngx_log_t *log)
{
    if (store == NULL) {
        return NGX_DECLINED;
    }

    /* while a write uses the environment in the pool it stays as it is */
    if (store->open && store->checked != ngx_time()) {
        store->checked = ngx_time();
        (void) ngx_http_loyalty_store_replaced(store, log);
    }

    if (!store->open
        && (ngx_time() < store->retry
            || ngx_http_loyalty_store_open(store, log) != NGX_OK))
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * Without a read transaction, unless there is a new snapshot to take
 * up: brings the epochs up to the last snapshot committed, which
 * mdb_env_info() reads off the meta pages of the map.
 * A cached entry current after this holds data that no commit but click
 * flushes has changed up to that snapshot: what a transaction begun now
 * would read (it gets that snapshot, or a later one whose commit this
 * worker sees at its next peek).  So a cache hit needs no transaction.
 * NGX_DECLINED: no store to read; the caller begins no transaction.
 * Through ngx_http_loyalty_store_peek(), which does without it while the
 * store is open, checked this second, and has no new snapshot.
 */
ngx_int_t
ngx_http_loyalty_store_look(ngx_http_loyalty_store_t *store, ngx_log_t *log)
{
    MDB_envinfo  info;

    if (ngx_http_loyalty_store_ready(store, log) != NGX_OK
        || mdb_env_info(store->st.env, &info) != 0)
    {
        return NGX_DECLINED;
    }

    /* a new snapshot: its changes are read in a transaction */
    if (info.me_last_txnid != store->seen) {
        if (ngx_http_loyalty_store_begin(store, log) == NULL) {
            return NGX_DECLINED;
        }

        ngx_http_loyalty_store_end(store);
    }

    return NGX_OK;
}


MDB_txn *
ngx_http_loyalty_store_begin(ngx_http_loyalty_store_t *store, ngx_log_t *log)
{
    int  rc;

    if (ngx_http_loyalty_store_ready(store, log) != NGX_OK) {
        return NULL;
    }

    rc = mdb_txn_renew(store->txn);

    if (rc != 0 && store->busy) {
        ngx_log_error(NGX_LOG_INFO, log, 0,
                      "loyalty_store \"%s\": mdb_txn_renew() failed during "
                      "a write, retried after it: %s", store->path,
                      mdb_strerror(rc));
        return NULL;
    }

    if (rc == MDB_MAP_RESIZED) {
        if (ngx_http_loyalty_store_remap(store, log) != NGX_OK) {
            return NULL;
        }

        rc = mdb_txn_renew(store->txn);
    }

    if (rc != 0) {
        /* a reader slot lost to an outside check, say: start afresh */
        ngx_http_loyalty_store_lost(store, log, "mdb_txn_renew() failed", rc);
        return NULL;
    }

    ngx_http_loyalty_store_epoch(store, mdb_txn_id(store->txn));

    return store->txn;
}


/*
 * Click flushes write the store every few seconds; they change nothing
 * that the caches keep.  So the caches' entries hold from the last
 * snapshot that was not a flush (the epoch) on, rather than for one
 * snapshot only.  A flush not yet noted as such counts as a change: the
 * caches are refilled, never wrong.  The member cache goes further: a
 * commit that sealed the list of members it changed (a batch of events,
 * see ngx_http_loyalty_cache_changed()) retires those members only, so
 * its entries hold from member_epoch on, unless their member changed.
 * Called with the store's read transaction begun.
 */

static void
ngx_http_loyalty_store_epoch(ngx_http_loyalty_store_t *store, size_t id)
{
    size_t                       t;
    ngx_uint_t                   i;
    ngx_http_loyalty_flushes_t  *f;

    if (id == store->seen) {
        return;
    }

    f = store->flushes;

    if (store->seen == 0 || id < store->seen
        || id - store->seen > NGX_HTTP_LOYALTY_FLUSHES)
    {
        store->epoch = id;
        store->member_epoch = id;

    } else {
        for (t = store->seen + 1; t <= id; t++) {
            for (i = 0; f && i < NGX_HTTP_LOYALTY_FLUSHES; i++) {
                if (f->txnid[i] == t && f->ino[i] == store->ino) {
                    break;
                }
            }

            if (f && i < NGX_HTTP_LOYALTY_FLUSHES) {
                continue;
            }

            store->epoch = t;

            if (ngx_http_loyalty_cache_changed(store, t) != NGX_OK) {
                store->member_epoch = t;
            }
        }
    }

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "loyalty: snapshot %uz after %uz, epoch %uz, "
                   "member epoch %uz",
                   id, store->seen, store->epoch, store->member_epoch);

    store->seen = id;
}


ngx_http_loyalty_store_t *
ngx_http_loyalty_store_get(ngx_http_request_t *r)
{
    ngx_http_loyalty_main_conf_t  *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_loyalty_module);

    return lmcf->store;
}


/*
 * Counts a problem with the store's data; says whether to log it: once
 * per snapshot and kind, so that requests cannot flood the log with it.
 */

ngx_uint_t
ngx_http_loyalty_store_problem(ngx_http_loyalty_store_t *store,
    ngx_http_loyalty_problem_e problem)
{
    size_t  id;

    store->problems[problem]++;

    id = mdb_txn_id(store->txn);

    if (id == store->problem_txnid[problem]) {
        return 0;
    }

    store->problem_txnid[problem] = id;

    return 1;
}


/*
 * A read of key that failed otherwise than MDB_NOTFOUND, logged with the
 * key: NGX_ERROR, a failure of the moment (not to be remembered).
 */
ngx_int_t
ngx_http_loyalty_store_read_failed(ngx_http_loyalty_store_t *store,
    ngx_log_t *log, const void *key, size_t len, int rc)
{
    ngx_log_error(NGX_LOG_ERR, log, 0,
                  "loyalty_store \"%s\": mdb_get(\"%*s\") failed: %s",
                  store->path, len, key, mdb_strerror(rc));

    return NGX_ERROR;
}


/* the tiers as of the transaction begun by ngx_http_loyalty_store_begin() */
const loyalty_tierset_t *
ngx_http_loyalty_store_tiers(ngx_http_loyalty_store_t *store, ngx_log_t *log)
{
    int                  rc;
    u_char              *p, *end;
    size_t               id, i;
    loyalty_tier_ref_t  *t;

    id = mdb_txn_id(store->txn);

    if (store->tiers_txnid >= store->epoch && store->tiers_txnid != 0) {
        return store->tiers_ok ? &store->tiers : NULL;
    }

    store->tiers_txnid = id;
    store->tiers_ok = 0;

    rc = loyalty_tierset_load(store->txn, store->st.dbi[LOYALTY_DB_TIERS],
                              &store->tiers);
    if (rc != 0) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "loyalty_store \"%s\": cannot read its tiers (more "
                      "than %d, or a damaged one): %s", store->path,
                      LOYALTY_TIERS_MAX, mdb_strerror(rc));
        return NULL;
    }

    /* the map's pages may be reused once the transaction is reset */
    p = store->tiers_buf;
    end = p + sizeof(store->tiers_buf);

    for (i = 0; i < store->tiers.n; i++) {
        t = &store->tiers.tiers[i];

        /* tierset_load checked both lengths; the buffer holds the maxima */
        if ((size_t) (end - p) < t->name_len + t->label_len) {
            return NULL;
        }

        t->name = (char *) ngx_cpymem(p, t->name, t->name_len) - t->name_len;
        p += t->name_len;
        t->label = (char *) ngx_cpymem(p, t->label, t->label_len)
                   - t->label_len;
        p += t->label_len;
    }

    store->tiers_ok = 1;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log, 0,
                   "loyalty: %uz tiers cached at snapshot %uz",
                   store->tiers.n, id);

    return &store->tiers;
}


void
ngx_http_loyalty_store_end(ngx_http_loyalty_store_t *store)
{
    mdb_txn_reset(store->txn);
}


/*
 * Another process grew the map: adopt its size, with no transaction of
 * this process active (the caller's is reset, no write is in the pool).
 * A store that cannot follow is closed and reopened later.
 */
ngx_int_t
ngx_http_loyalty_store_remap(ngx_http_loyalty_store_t *store, ngx_log_t *log)
{
    int  rc;

    mdb_txn_abort(store->txn);
    store->txn = NULL;

    rc = mdb_env_set_mapsize(store->st.env, 0);
    if (rc == 0) {
        rc = mdb_txn_begin(store->st.env, NULL, MDB_RDONLY, &store->txn);
    }

    if (rc != 0) {
        ngx_http_loyalty_store_lost(store, log, "cannot follow a map resize",
                                    rc);
        return NGX_ERROR;
    }

    mdb_txn_reset(store->txn);

    ngx_log_error(NGX_LOG_INFO, log, 0,
                  "loyalty_store \"%s\": map resized", store->path);

    return NGX_OK;
}

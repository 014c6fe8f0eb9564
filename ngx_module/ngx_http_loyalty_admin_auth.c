/*
 * nginx-loyalty: who may use the admin API.
 *
 * loyalty_admin_token names a file of tokens, each with an id (logged,
 * never the token) and a scope (read, or write, which implies read); the
 * worker keeps their SHA-256 digests only and compares a request's bearer
 * token with every one in constant time.  Without a file, and with
 * "loyalty_admin_open loopback", loopback clients may use it; otherwise
 * nobody may.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ngx_http_loyalty_module.h"
#include "ngx_http_loyalty_admin.h"


#define NGX_HTTP_LOYALTY_TOKEN_MIN     16
#define NGX_HTTP_LOYALTY_TOKEN_MAX     256
#define NGX_HTTP_LOYALTY_TOKENS_MAX    64


/* a token's scope: write implies read */
#define NGX_HTTP_LOYALTY_SCOPE_READ    0x01
#define NGX_HTTP_LOYALTY_SCOPE_WRITE   0x02


/* an admin token, as its SHA-256 digest: compared in constant time */
struct ngx_http_loyalty_token_s {
    u_char                        digest[32];
    ngx_str_t                     id;       /* logged, never the token */
    ngx_uint_t                    scope;
    ngx_uint_t                    line;
};


struct ngx_http_loyalty_tokens_s {
    ngx_uint_t                    n;
    ngx_http_loyalty_token_t      token[NGX_HTTP_LOYALTY_TOKENS_MAX];
};


static ngx_uint_t ngx_http_loyalty_admin_loopback(struct sockaddr *sa);
static ngx_http_loyalty_token_t *ngx_http_loyalty_admin_authorized(
    ngx_http_request_t *r, ngx_http_loyalty_tokens_t *tokens);
static ngx_int_t ngx_http_loyalty_admin_token_line(ngx_conf_t *cf,
    ngx_str_t *path, ngx_http_loyalty_tokens_t *tokens, ngx_uint_t lineno,
    u_char *p, u_char *end);
static ngx_uint_t ngx_http_loyalty_admin_token_fields(u_char *p, u_char *end,
    ngx_str_t *field);
static ngx_int_t ngx_http_loyalty_admin_token_unique(ngx_conf_t *cf,
    ngx_str_t *path, ngx_http_loyalty_tokens_t *tokens,
    ngx_http_loyalty_token_t *t);
static ngx_int_t ngx_http_loyalty_admin_token_scope(ngx_conf_t *cf,
    ngx_str_t *path, ngx_uint_t lineno, ngx_str_t *field,
    ngx_http_loyalty_token_t *t);


/*
 * Who asks: the holder of one of the file's tokens, or, with
 * "loyalty_admin_open loopback" and no file, a loopback client.
 * NGX_DECLINED to go on, else the refusal, sent.
 */
ngx_int_t
ngx_http_loyalty_admin_access(ngx_http_request_t *r,
    ngx_http_loyalty_loc_conf_t *llcf, ngx_http_loyalty_admin_req_t *req)
{
    ngx_http_loyalty_token_t  *token;

    req->token = NULL;

    if (llcf->admin_tokens == NULL) {

        /* the configuration allows no other case: closed if it did */
        if (llcf->admin_open == NGX_HTTP_LOYALTY_ADMIN_LOOPBACK
            && ngx_http_loyalty_admin_loopback(r->connection->sockaddr))
        {
            return NGX_DECLINED;
        }

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "loyalty: admin request refused: "
                      "\"loyalty_admin_open loopback\" admits loopback "
                      "clients only");

        (void) ngx_http_discard_request_body(r);
        ngx_http_loyalty_metric(NGX_HTTP_LOYALTY_M_DENIED_LOOPBACK);

        return ngx_http_loyalty_admin_error(r, NGX_HTTP_FORBIDDEN,
                                            "this admin API admits "
                                            "loopback clients only");
    }

    token = ngx_http_loyalty_admin_authorized(r, llcf->admin_tokens);

    if (token == NULL) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "loyalty: admin request without a valid token");

        if (ngx_http_loyalty_add_header(r, "WWW-Authenticate",
                                        (u_char *) "Bearer",
                                        sizeof("Bearer") - 1)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        (void) ngx_http_discard_request_body(r);
        ngx_http_loyalty_metric(NGX_HTTP_LOYALTY_M_DENIED_TOKEN);

        return ngx_http_loyalty_admin_error(r, NGX_HTTP_UNAUTHORIZED,
                                            "a valid bearer token is "
                                            "required");
    }

    req->token = token;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "loyalty: admin request with token \"%V\" (%s)",
                  &token->id,
                  (token->scope & NGX_HTTP_LOYALTY_SCOPE_WRITE) ? "write"
                                                                : "read");

    return NGX_DECLINED;
}


/*
 * Reads need the read scope, anything that changes the store the write
 * scope.  GET .../due is one of those: a claim writes its lease and
 * hides the touches from every other caller until the lease ends, so a
 * read token could keep them from the staff who must make them.
 * NGX_DECLINED to go on, else the refusal, sent.
 */
ngx_int_t
ngx_http_loyalty_admin_scope(ngx_http_request_t *r,
    ngx_http_loyalty_admin_t *a, ngx_http_loyalty_token_t *token)
{
    ngx_uint_t  need;

    if (token == NULL) {
        return NGX_DECLINED;    /* a loopback client of an open admin API */
    }

    need = (r->method == NGX_HTTP_GET && a->op != NGX_HTTP_LOYALTY_OP_DUE)
           ? NGX_HTTP_LOYALTY_SCOPE_READ
           : NGX_HTTP_LOYALTY_SCOPE_READ|NGX_HTTP_LOYALTY_SCOPE_WRITE;

    if ((token->scope & need) == need) {
        return NGX_DECLINED;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "loyalty: admin request refused: token \"%V\" may only "
                  "read", &token->id);

    (void) ngx_http_discard_request_body(r);
    ngx_http_loyalty_metric(NGX_HTTP_LOYALTY_M_DENIED_SCOPE);

    return ngx_http_loyalty_admin_error(r, NGX_HTTP_FORBIDDEN,
                                        "this token may only read");
}


/* 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104; not even a unix socket */
static ngx_uint_t
ngx_http_loyalty_admin_loopback(struct sockaddr *sa)
{
    struct sockaddr_in   *sin;
#if (NGX_HAVE_INET6)
    struct sockaddr_in6  *sin6;
#endif

    switch (sa->sa_family) {

    case AF_INET:
        sin = (struct sockaddr_in *) sa;
        return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;

#if (NGX_HAVE_INET6)
    case AF_INET6:
        sin6 = (struct sockaddr_in6 *) sa;

        if (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr)) {
            return 1;
        }

        return IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)
               && sin6->sin6_addr.s6_addr[12] == 127;
#endif

    default:
        return 0;
    }
}


/* $loyalty_admin_token_id: the id of the token the request carried */
ngx_int_t
ngx_http_loyalty_admin_token_var(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_loyalty_admin_req_t  *req;

    req = ngx_http_loyalty_admin_req(r->main, 0);

    if (req == NULL || req->token == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = req->token->id.len;
    v->data = req->token->id.data;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


/* "Authorization: Bearer TOKEN": which of the file's tokens, or NULL */
static ngx_http_loyalty_token_t *
ngx_http_loyalty_admin_authorized(ngx_http_request_t *r,
    ngx_http_loyalty_tokens_t *tokens)
{
    u_char            digest[32];
    ngx_str_t         v;
    ngx_uint_t        i, eq, found;
    unsigned int      n;
    ngx_table_elt_t  *h;

    h = r->headers_in.authorization;

    if (h == NULL) {
        return NULL;
    }

    v = h->value;

    if (v.len <= sizeof("Bearer ") - 1
        || ngx_strncasecmp(v.data, (u_char *) "Bearer ",
                           sizeof("Bearer ") - 1)
           != 0)
    {
        return NULL;
    }

    v.data += sizeof("Bearer ") - 1;
    v.len -= sizeof("Bearer ") - 1;

    if (v.len > NGX_HTTP_LOYALTY_TOKEN_MAX
        || EVP_Digest(v.data, v.len, digest, &n, EVP_sha256(), NULL) != 1)
    {
        return NULL;
    }

    /*
     * Every token compared and the match picked without a branch, so
     * that timing tells nothing of which; tokens are unique.
     */
    found = 0;
    for (i = 0; i < tokens->n; i++) {
        eq = (CRYPTO_memcmp(digest, tokens->token[i].digest, 32) == 0);
        found |= (0 - eq) & (i + 1);
    }

    return found ? &tokens->token[found - 1] : NULL;
}


/*
 * loyalty_admin_token FILE: lines of "ID SCOPE TOKEN", "#" comments and
 * blank lines.  A line of a bare token, the format of old, is read as a
 * write token named "line-N", with a warning.
 */
char *
ngx_http_loyalty_admin_tokens(ngx_conf_t *cf, ngx_str_t *path,
    ngx_http_loyalty_tokens_t **out)
{
    u_char                     *p, *end, *line, *eol;
    size_t                      size;
    ssize_t                     n;
    ngx_fd_t                    fd;
    ngx_uint_t                  lineno;
    ngx_file_t                  file;
    ngx_file_info_t             fi;
    ngx_http_loyalty_tokens_t  *tokens;

    if (ngx_conf_full_name(cf->cycle, path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    fd = ngx_open_file(path->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "loyalty_admin_token: cannot open \"%V\"", path);
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));
    file.fd = fd;
    file.name = *path;
    file.log = cf->log;

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR
        || ngx_file_size(&fi) > 65536)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "loyalty_admin_token: \"%V\" is not a file of at "
                           "most 64k", path);
        (void) ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    if (fi.st_mode & S_IROTH) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "loyalty_admin_token: tokens file \"%V\" is "
                           "readable by every user: chmod 600 it", path);
    }

    size = ngx_file_size(&fi);

    p = ngx_pnalloc(cf->temp_pool, size + 1);
    tokens = ngx_pcalloc(cf->pool, sizeof(ngx_http_loyalty_tokens_t));

    if (p == NULL || tokens == NULL) {
        (void) ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    n = ngx_read_file(&file, p, size, 0);
    (void) ngx_close_file(fd);

    if (n != (ssize_t) size) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "loyalty_admin_token: cannot read \"%V\"", path);
        return NGX_CONF_ERROR;
    }

    end = p + size;
    lineno = 0;

    for (line = p; line < end; line = eol + 1) {
        lineno++;

        eol = ngx_strlchr(line, end, '\n');
        if (eol == NULL) {
            eol = end;
        }

        if (ngx_http_loyalty_admin_token_line(cf, path, tokens, lineno, line,
                                              eol)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    if (tokens->n == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "loyalty_admin_token: \"%V\" has no token", path);
        return NGX_CONF_ERROR;
    }

    *out = tokens;

    return NGX_CONF_OK;
}


/* one line of a tokens file, from p to end */
static ngx_int_t
ngx_http_loyalty_admin_token_line(ngx_conf_t *cf, ngx_str_t *path,
    ngx_http_loyalty_tokens_t *tokens, ngx_uint_t lineno, u_char *p,
    u_char *end)
{
    u_char                    *q;
    ngx_str_t                  field[3];
    ngx_uint_t                 n;
    unsigned int               dlen;
    ngx_http_loyalty_token_t  *t;

    n = ngx_http_loyalty_admin_token_fields(p, end, field);

    if (n == 0) {
        return NGX_OK;
    }

    if (n != 1 && n != 3) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "loyalty_admin_token: \"%V\" line %ui: "
                           "\"ID SCOPE TOKEN\" expected", path, lineno);
        return NGX_ERROR;
    }

    if (tokens->n == NGX_HTTP_LOYALTY_TOKENS_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "loyalty_admin_token: \"%V\" line %ui: more than "
                           "%d tokens", path, lineno,
                           NGX_HTTP_LOYALTY_TOKENS_MAX);
        return NGX_ERROR;
    }

    /* the token, never written in any message */
    q = field[n - 1].data;
    p = q + field[n - 1].len;

    for ( /* void */ ; q < p; q++) {
        if (*q <= ' ' || *q >= 0x7f) {
            break;
        }
    }

    if (q != p || field[n - 1].len < NGX_HTTP_LOYALTY_TOKEN_MIN
        || field[n - 1].len > NGX_HTTP_LOYALTY_TOKEN_MAX)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "loyalty_admin_token: \"%V\" line %ui: a token "
                           "is %d to %d printable characters", path, lineno,
                           NGX_HTTP_LOYALTY_TOKEN_MIN,
                           NGX_HTTP_LOYALTY_TOKEN_MAX);
        return NGX_ERROR;
    }

    t = &tokens->token[tokens->n];
    t->line = lineno;

    if (ngx_http_loyalty_admin_token_scope(cf, path, lineno,
                                           n == 3 ? field : NULL, t)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (EVP_Digest(field[n - 1].data, field[n - 1].len, t->digest, &dlen,
                   EVP_sha256(), NULL)
        != 1)
    {
        return NGX_ERROR;
    }

    if (ngx_http_loyalty_admin_token_unique(cf, path, tokens, t) != NGX_OK) {
        return NGX_ERROR;
    }

    tokens->n++;

    return NGX_OK;
}


/* the blank-separated fields of a line: 0 for a comment, 4 for more */
static ngx_uint_t
ngx_http_loyalty_admin_token_fields(u_char *p, u_char *end, ngx_str_t *field)
{
    ngx_uint_t  n;

    for (n = 0; /* void */; n++) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\r')) {
            p++;
        }

        if (p == end || (n == 0 && *p == '#')) {
            return n;
        }

        if (n == 3) {
            return 4;
        }

        field[n].data = p;

        while (p < end && *p != ' ' && *p != '\t' && *p != '\r') {
            p++;
        }

        field[n].len = p - field[n].data;
    }
}


/* neither the id nor the token of t is one of the earlier lines' */
static ngx_int_t
ngx_http_loyalty_admin_token_unique(ngx_conf_t *cf, ngx_str_t *path,
    ngx_http_loyalty_tokens_t *tokens, ngx_http_loyalty_token_t *t)
{
    ngx_uint_t  i;

    for (i = 0; i < tokens->n; i++) {
        if (tokens->token[i].id.len == t->id.len
            && ngx_strncmp(tokens->token[i].id.data, t->id.data, t->id.len)
               == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "loyalty_admin_token: \"%V\" line %ui: the id "
                               "\"%V\" is on line %ui too", path, t->line,
                               &t->id, tokens->token[i].line);
            return NGX_ERROR;
        }

        if (ngx_memcmp(tokens->token[i].digest, t->digest, 32) == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "loyalty_admin_token: \"%V\" line %ui: the "
                               "same token as line %ui", path, t->line,
                               tokens->token[i].line);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* a token's id and scope: from "ID SCOPE", or for a bare token, its line */
static ngx_int_t
ngx_http_loyalty_admin_token_scope(ngx_conf_t *cf, ngx_str_t *path,
    ngx_uint_t lineno, ngx_str_t *field, ngx_http_loyalty_token_t *t)
{
    if (field == NULL) {
        t->scope = NGX_HTTP_LOYALTY_SCOPE_READ|NGX_HTTP_LOYALTY_SCOPE_WRITE;

        t->id.data = ngx_pnalloc(cf->pool, sizeof("line-") + NGX_INT_T_LEN);
        if (t->id.data == NULL) {
            return NGX_ERROR;
        }

        t->id.len = ngx_sprintf(t->id.data, "line-%ui", lineno) - t->id.data;

        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "loyalty_admin_token: \"%V\" line %ui: a bare "
                           "token, taken as \"%V write TOKEN\": give it an "
                           "id and a scope", path, lineno, &t->id);
        return NGX_OK;
    }

    if (!loyalty_valid_id((char *) field[0].data, field[0].len)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "loyalty_admin_token: \"%V\" line %ui: an id is "
                           "1 to %d of A-Z a-z 0-9 _ . -", path, lineno,
                           LOYALTY_ID_MAX);
        return NGX_ERROR;
    }

    if (field[1].len == 4 && ngx_strncmp(field[1].data, "read", 4) == 0) {
        t->scope = NGX_HTTP_LOYALTY_SCOPE_READ;

    } else if (field[1].len == 5
               && ngx_strncmp(field[1].data, "write", 5) == 0)
    {
        t->scope = NGX_HTTP_LOYALTY_SCOPE_READ|NGX_HTTP_LOYALTY_SCOPE_WRITE;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "loyalty_admin_token: \"%V\" line %ui: the scope "
                           "is \"read\" or \"write\"", path, lineno);
        return NGX_ERROR;
    }

    t->id.data = ngx_pstrdup(cf->pool, &field[0]);
    if (t->id.data == NULL) {
        return NGX_ERROR;
    }

    t->id.len = field[0].len;

    return NGX_OK;
}

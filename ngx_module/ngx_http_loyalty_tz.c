/*
 * nginx-loyalty: loyalty_timezone NAME, the shop's time zone, read from
 * the system's tzdata by the core (core/loyalty_tz.c) as the directive is
 * parsed, so that a bad name is refused at its line.  Its days are the
 * Lua date helpers', the cadences' (birthdays and calendar dates) and the
 * click counters'.  TZ is never set: the zone is the module's, not the
 * process's.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_loyalty_module.h"
#include "loyalty_tz.h"


/* "loyalty_timezone NAME", once set by ngx_conf_set_str_slot() */
static char *
ngx_http_loyalty_timezone_set(ngx_conf_t *cf, void *post, void *data)
{
    ngx_str_t  *name = data;

    char                           err[NGX_MAX_ERROR_STR];
    loyalty_tz_t                  *tz;
    ngx_http_loyalty_main_conf_t  *lmcf;

    lmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_loyalty_module);

    tz = ngx_palloc(cf->pool, sizeof(loyalty_tz_t));
    if (tz == NULL) {
        return NGX_CONF_ERROR;
    }

    /* the arguments are NUL-terminated */
    if (ngx_strlen(name->data) != name->len
        || loyalty_tz_load(tz, NULL, (char *) name->data, err, sizeof(err))
           != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"loyalty_timezone\" %s",
                           name->len == ngx_strlen(name->data)
                           ? err : "has a NUL byte in its name");
        return NGX_CONF_ERROR;
    }

    lmcf->tz = tz;

    return NGX_CONF_OK;
}


ngx_conf_post_t  ngx_http_loyalty_timezone_post = {
    ngx_http_loyalty_timezone_set
};

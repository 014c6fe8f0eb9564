/*
 * Unit tests of loyalty_bots.c: reading bots lists, and matching
 * User-Agents against them; the project's list in ngx_module/bots.txt.
 */

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loyalty_bots.h"
#include "store_fixture.h"
#include "tap.h"


#define BOTS_TXT    "ngx_module/bots.txt"
#define ERRLEN      256

/* a string literal and its length */
#define LIT(s)      s, sizeof(s) - 1


typedef struct {
    const char  *text;
    const char  *err;
} list_error_t;


/* what real bots and link-preview fetchers send */
static const char  *bot_uas[] = {
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "Slackbot 1.0 (+https://api.slack.com/robots)",
    "Slack-ImgProxy (+https://api.slack.com/robots)",
    "Twitterbot/1.0",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "facebookexternalhit/1.1 Facebot Twitterbot/1.0",
    "WhatsApp/2.23.20.0 A",
    "WhatsApp/2.2404.2 i",
    "TelegramBot (like TwitterBot)",
    "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient "
    "+http://www.linkedin.com)",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.118 Mobile "
    "Safari/537.36 (compatible; Googlebot/2.1; "
    "+http://www.google.com/bot.html)",
    "curl/8.5.0",
    "Wget/1.21.4",
    "python-requests/2.31.0",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; Baiduspider/2.0; "
    "+http://www.baidu.com/search/spider.html)",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 5_0 like Mac OS X) "
    "AppleWebKit/534.46 (KHTML, like Gecko) Version/5.1 Mobile/9A334 "
    "Safari/7534.48.3 (compatible; Applebot/0.1; "
    "+http://www.apple.com/go/applebot)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
    "like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 6.1; Win64; x64; SkypeUriPreview) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/51.0.2704.79 "
    "Safari/537.36",
    "Mozilla/5.0 (compatible; Pinterestbot/1.0; "
    "+http://www.pinterest.com/bot.html)",
    "Go-http-client/1.1",
    "okhttp/4.12.0",
    "Python-urllib/3.11",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; "
    "GPTBot/1.2; +https://openai.com/gptbot)",
    /* issue 18: the link-preview fetchers and crawlers in common use */
    "Mozilla/5.0 (Linux; Android 11; Pixel 2; DuplexWeb-Google/1.0) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/86.0.4240.193 Mobile "
    "Safari/537.36 Google-PageRenderer Google "
    "(+https://developers.google.com/+/web/snippet/)",
    "Mozilla/5.0 (Windows NT 6.1; rv:6.0) Gecko/20110814 Firefox/6.0 "
    "Google-PageRenderer Google (+https://developers.google.com/+/web/"
    "snippet/)",
    "Mozilla/5.0 (compatible; GoogleOther)",
    "Mozilla/5.0 (compatible; Google-InspectionTool/1.0;)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/112.0.0.0 Safari/537.36 Edg/112.0.1722.48 "
    "BingPreview/1.0b",
    "Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Mobile Safari/537.36 (compatible; Bytespider; "
    "spider-feedback@bytedance.com)",
    "Mozilla/5.0 (compatible;PetalBot;+https://webmaster.petalsearch.com/"
    "site/petalbot)",
    "Sogou web spider/4.0(+http://www.sogou.com/docs/help/webmasters.htm#07)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/50.0.2661.102 Safari/537.36; 360Spider",
    "Iframely/1.3.1 (+https://iframely.com/docs/about)",
    "Mozilla/5.0 (compatible; Embedly/0.2; +http://support.embed.ly/)",
    "Mozilla/5.0 (compatible; vkShare; +http://vk.com/dev/Share)",
    "Viber/20.9.0.8 CFNetwork/1410.0.3 Darwin/22.6.0",
    "facebookexternalhit/1.1;line-poker/1.0",
    "facebookexternalhit/1.1; kakaotalk-scrap/1.0; "
    "+https://devtalk.kakao.com/docs/ogscraping",
    "Snap URL Preview Service; bot; snapchat; "
    "https://developers.snap.com/robots",
    "http.rb/5.1.1 (Mastodon/4.2.8; +https://mastodon.social/)",
    "Mozilla/5.0 (compatible; Bluesky Cardyb/1.1; +mailto:support@bsky.app)",
    "WhatsApp/2",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 "
    "(KHTML, like Gecko) Version/9.0.1 Safari/601.2.4 "
    "facebookexternalhit/1.1 Facebot Twitterbot/1.0",
    "Mozilla/5.0 (compatible; redditbot/1.0; +http://www.reddit.com/"
    "feedback)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; "
    "ClaudeBot/1.0; +claudebot@anthropic.com)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; "
    "PerplexityBot/1.0; +https://perplexity.ai/perplexitybot)",
    "CCBot/2.0 (https://commoncrawl.org/faq/)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/42.0.2311.135 Safari/537.36 Edge/12.246 "
    "MicrosoftPreview/2.0 +https://aka.ms/MicrosoftPreview",
    "Mozilla/5.0 (compatible; DuckAssistBot/1.2; "
    "+http://duckduckgo.com/duckassistbot.html)",
    "Mozilla/5.0 (compatible; YandexRenderResourcesBot/1.0; "
    "+http://yandex.com/bots)",
    "Wget/1.21.2",
    "Python-urllib/3.12",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/120.0.6099.109 Safari/537.36",
    "Mozilla/5.0 (compatible; Twitterbot/1.0)",
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via "
    "ggpht.com GoogleImageProxy)",
};


/* User-Agents that name no browser: bots whatever the list says */
static const char  *bare_uas[] = {
    "",
    " ",
    "Mozilla/5.0",
    "mozilla/5.0 ",
    "Mozilla/4.0",
    "\tMozilla/5.0\t",
    "MOZILLA/5",
    "Mozilla/",
};


/* browsers, in-app browsers included: none of them may be taken for bots */
static const char  *people_uas[] = {
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) "
    "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 "
    "Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 "
    "Firefox/125.0",
    "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 "
    "Firefox/125.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/123.0.0.0 Safari/537.36 OPR/109.0.0.0",
    "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 "
    "(KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile "
    "Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) "
    "AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 "
    "MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN",
    "Mozilla/5.0 (Linux; Android 13; V2227A Build/TP1A.220624.014; wv) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 "
    "Chrome/111.0.5563.116 Mobile Safari/537.36 XWEB/1160065 "
    "MMWEBSDK/20231202 MMWEBID/2247 MicroMessenger/8.0.47.2560(0x28002F30) "
    "WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/81.0.4044.138 Safari/537.36 NetType/WIFI "
    "MicroMessenger/7.0.20.1781(0x6700143B) WindowsWechat(0x6309092b) "
    "XWEB/9129 Flue",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) "
    "AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 "
    "[FBAN/FBIOS;FBAV/459.0.0.38.116;FBBV/588939265;FBDV/iPhone14,5;"
    "FBMD/iPhone;FBSN/iOS;FBSV/17.4;FBSS/3;FBCR/;FBID/phone;FBLC/en_US;"
    "FBOP/80]",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) "
    "AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram "
    "329.0.0.41.93 (iPhone14,5; iOS 17_4; en_US; en; scale=3.00; "
    "1170x2532; 590364530)",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) "
    "AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 "
    "[LinkedInApp]/9.29.8149",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) "
    "AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 "
    "[Pinterest/iOS]",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) "
    "AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Safari Line/14.5.0",
    "Mozilla/5.0 (Linux; Android 14; SM-S918N Build/UP1A.231005.007; wv) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 "
    "Chrome/124.0.6367.82 Mobile Safari/537.36;KAKAOTALK 2410450",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36 DuckDuckGo/5",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/120.0.0.0 YaBrowser/24.1.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; U; Android 13; zh-CN; V2227A Build/TP1A.220624.014) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/100.0.4896.58 "
    "UCBrowser/15.5.8.1231 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; V2227A Build/TP1A.220624.014; wv) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/97.0.4692.98 "
    "Mobile Safari/537.36 T7/13.52 SP-engine/2.91.0 baiduboxapp/13.52.0.10 "
    "(Baidu; P1 13)",
    "Mozilla/5.0 (Linux; Android 12; HarmonyOS; NOH-AN00) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/99.0.4844.88 "
    "HuaweiBrowser/14.0.5.300 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; CUBOT X30) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 10; SogouMobileBrowser) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/88.0.4324.93 Mobile "
    "Safari/537.36 SogouMobileBrowser/5.35.7",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/UQ1A.240205.004; wv) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 "
    "Chrome/124.0.6367.82 Mobile Safari/537.36 [Pinterest/Android]",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) "
    "AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 "
    "Snapchat/12.80.0.40 (like Safari/8617.2.4.10.8, panda)",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) "
    "AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 "
    "TwitterAndroid",
    "Mozilla/5.0 (Linux; Android 13; SM-A536B Build/TP1A.220624.014; wv) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 "
    "Chrome/120.0.6099.144 Mobile Safari/537.36 Viber/21.6.0.0",
    "Mozilla/5.0 (Linux; Android 13; V2227A Build/TP1A.220624.014; wv) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 "
    "Chrome/109.0.5414.86 MQQBrowser/6.2 TBS/046805 Mobile Safari/537.36 "
    "V1_AND_SQ_8.9.58_4108_YYB_D QQ/8.9.58.11050 NetType/WIFI WebP/0.3.0 "
    "AppId/537155547",
    "Mozilla/5.0 Firefox/120.0",
    "Mozilla/5.0x",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) "
    "AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 QQ/9.0.20.609 "
    "V1_IPH_SQ_9.0.20_1_APP_A Pixel/1170 MiniAppEnable SimpleUISwitch/0 "
    "StudyMode/0 CurrentMode/0 CurrentFontScale/1.000000 QQTheme/1000 "
    "Core/WKWebView Device/Apple(iPhone 14) NetType/WIFI QBWebViewType/1 "
    "WKType/1",
    "",
};


static const list_error_t  list_errors[] = {
    { "ab\n", "line 1: pattern shorter than 3 bytes" },
    { "abc\n  ab  \n", "line 2: pattern shorter than 3 bytes" },
    { "# one\n\n  \n\t\nabcd\n\r\nx\n",
      "line 7: pattern shorter than 3 bytes" },
    { "abc\r\nab\r\n", "line 2: pattern shorter than 3 bytes" },
    { "abc\nab", "line 2: pattern shorter than 3 bytes" },
    { "ab\x01" "c\n", "line 1: control character 0x01 in pattern" },
    { "ab\tcd\n", "line 1: control character 0x09 in pattern" },
    { "abc\nab\rcd\n", "line 2: control character 0x0d in pattern" },
    { "abc\nabc\r\r\n", "line 2: control character 0x0d in pattern" },
    { "abc\x7f\n", "line 1: control character 0x7f in pattern" },
    { "abc\x1b[0m\n", "line 1: control character 0x1b in pattern" },
    { "abc\vdef\n", "line 1: control character 0x0b in pattern" },
};


static loyalty_bots_t *
list(const char *text, size_t len)
{
    char             err[ERRLEN];
    loyalty_bots_t  *b;

    b = loyalty_bots_new();

    if (b && loyalty_bots_add_list(b, text, len, err, sizeof(err)) != 0) {
        diag("%s", err);
        loyalty_bots_free(b);
        return NULL;
    }

    return b;
}


/* the pattern matched, or "" when none is */
static const char *
matched(const loyalty_bots_t *b, const char *ua)
{
    long    i;
    size_t  len;

    i = loyalty_bots_match(b, ua, strlen(ua));

    return i < 0 ? "" : loyalty_bots_pattern(b, (size_t) i, &len);
}


static void
test_lists(void)
{
    long             i;
    char             err[ERRLEN];
    size_t           k, len;
    loyalty_bots_t  *b;
    const char      *p;

    static const char  text[] =
        "# bots\n"
        "  # indented comment\n"
        "\n"
        "   \t  \n"
        "Slackbot\r\n"
        "  \tGamma Bot \t \r\n"
        "abc # not a comment\n"
        "#\n"
        "curl/\n"
        "UPPER\n"
        "last-no-newline";

    static const char  *want[] = {
        "slackbot", "gamma bot", "abc # not a comment", "curl/", "upper",
        "last-no-newline"
    };

    b = list(text, sizeof(text) - 1);

    if (!ok(b != NULL && loyalty_bots_count(b) == nelts(want),
            "list: %zu patterns", nelts(want)))
    {
        loyalty_bots_free(b);
        b = loyalty_bots_new();
    }

    for (k = 0; k < loyalty_bots_count(b) && k < nelts(want); k++) {
        p = loyalty_bots_pattern(b, k, &len);
        ok(len == strlen(want[k]) && memcmp(p, want[k], len) == 0
           && p[len] == '\0',
           "list: pattern %zu is \"%s\"", k, want[k]);
    }

    is_str(matched(b, "Slackbot-LinkExpanding 1.0"), "slackbot",
           "match at the start");
    is_str(matched(b, "Mozilla/5.0 (compatible; SLACKBOT; x)"), "slackbot",
           "match in the middle, in upper case");
    is_str(matched(b, "x/1.0 sLaCkBoT"), "slackbot", "match at the end");
    is_str(matched(b, "slackbot"), "slackbot", "match of the whole UA");
    is_str(matched(b, "slackbo"), "", "no match of a pattern's prefix");
    is_str(matched(b, "lackbot"), "", "no match of a pattern's suffix");
    is_str(matched(b, "slack bot"), "", "no match with a space inserted");
    is_str(matched(b, "CURL/8.5.0"), "curl/", "curl/ in upper case");
    is_str(matched(b, "curl"), "", "no match of \"curl\" without \"/\"");
    is_str(matched(b, "a gamma bot!"), "gamma bot", "a pattern with a space");
    is_str(matched(b, "gamma  bot"), "", "no match with two spaces");
    is_str(matched(b, "xx upper"), "upper", "a pattern listed in upper case");
    is_str(matched(b, "LAST-NO-NEWLINE"), "last-no-newline",
           "the last line without a newline");
    is_str(matched(b, "abc # not a comment"), "abc # not a comment",
           "\"#\" inside a line is part of the pattern");
    is_str(matched(b, "abc"), "", "no match of its start alone");
    is_str(matched(b, ""), "", "no match of an empty UA");
    is_str(matched(b, "cu"), "", "no match of 2 bytes");

    i = loyalty_bots_match(b, "curl/ and slackbot", 4);
    is_int(i, -1, "match reads only len bytes");
    i = loyalty_bots_match(b, "xcurl/x", 6);
    ok(i >= 0 && strcmp(loyalty_bots_pattern(b, (size_t) i, &len), "curl/")
                 == 0,
       "match at the very end of len bytes");

    loyalty_bots_free(b);

    /* an empty list, and lists of nothing but comments */
    b = list("", 0);
    ok(b && loyalty_bots_count(b) == 0
       && loyalty_bots_match(b, "curl/8.0", 8) == -1,
       "an empty list matches nothing");
    loyalty_bots_free(b);

    b = list(LIT("# a\n\n#b\r\n   \r\n"));
    ok(b && loyalty_bots_count(b) == 0, "a list of comments has no pattern");
    loyalty_bots_free(b);

    /* lists add up; a list that fails adds nothing */
    b = list(LIT("alpha\n"));
    err[0] = '\0';
    ok(b && loyalty_bots_add_list(b, LIT("beta\ngamma\n"), err, sizeof(err))
            == 0
       && loyalty_bots_count(b) == 3 && strcmp(matched(b, "GAMMA"), "gamma")
                                        == 0
       && strcmp(matched(b, "alpha"), "alpha") == 0,
       "a second list adds to the first");

    ok(b && loyalty_bots_add_list(b, LIT("delta\nepsilon\nzz\n"), err,
                                  sizeof(err))
            == -1
       && loyalty_bots_count(b) == 3 && strcmp(matched(b, "delta"), "") == 0
       && strcmp(matched(b, "beta"), "beta") == 0,
       "a list that fails adds none of its patterns");
    is_str(err, "line 3: pattern shorter than 3 bytes",
           "the error names the line");

    ok(b && loyalty_bots_add_list(b, LIT("delta\n"), err, sizeof(err)) == 0
       && loyalty_bots_count(b) == 4
       && strcmp(matched(b, "xdeltax"), "delta") == 0
       && strcmp(matched(b, "beta"), "beta") == 0,
       "and the next list is added after the patterns before");
    loyalty_bots_free(b);

    /* non-ASCII bytes are patterns' bytes, compared as they are */
    b = list(LIT("caf\xc3\xa9\nx\xe9y\n"));
    is_str(matched(b, "Le CAF\xc3\xa9 app"), "caf\xc3\xa9",
           "a UTF-8 pattern, its ASCII part in another case");
    is_str(matched(b, "X\xc9Y"), "", "only ASCII letters fold their case");
    is_str(matched(b, "CAF\xc3\x89"), "", "\"\xc3\x89\" is not \"\xc3\xa9\"");
    loyalty_bots_free(b);

    /* candidates that share their first two bytes */
    b = list(LIT("abcd\nabxy\nabq\nABCDE\n"));
    is_str(matched(b, "zzabxyzz"), "abxy", "the second of a pair's patterns");
    is_str(matched(b, "abab abq"), "abq", "the third, after a false start");
    is_str(matched(b, "ABCDE"), "abcd", "the first listed of two that match");
    is_str(matched(b, "abcabxabq"), "abq", "after two near misses");
    is_str(matched(b, "ab"), "", "no match of the pair alone");
    loyalty_bots_free(b);

    /* the UA's NUL bytes are bytes like any other */
    b = list(LIT("bot\n"));
    ok(b && loyalty_bots_match(b, LIT("a\0bot")) == 0, "a match after a NUL");
    ok(b && loyalty_bots_match(b, LIT("bo\0t")) == -1, "a NUL breaks a match");
    loyalty_bots_free(b);
}


static void
test_list_errors(void)
{
    int              rc;
    char             err[ERRLEN], *text, *p, pat[LOYALTY_BOT_PATTERN_MAX + 2];
    size_t           i, len;
    loyalty_bots_t  *b;

    for (i = 0; i < nelts(list_errors); i++) {
        b = loyalty_bots_new();
        err[0] = '\0';
        rc = loyalty_bots_add_list(b, list_errors[i].text,
                                   strlen(list_errors[i].text), err,
                                   sizeof(err));
        ok(rc == -1 && strcmp(err, list_errors[i].err) == 0
           && loyalty_bots_count(b) == 0,
           "list error: %s", list_errors[i].err);
        if (rc != -1 || strcmp(err, list_errors[i].err) != 0) {
            diag("    rc %d, \"%s\"", rc, err);
        }
        loyalty_bots_free(b);
    }

    /* a NUL is a control character too, and a line does not end at it */
    b = loyalty_bots_new();
    rc = loyalty_bots_add_list(b, LIT("abc\nde\0f\n"), err, sizeof(err));
    ok(rc == -1 && strcmp(err, "line 2: control character 0x00 in pattern")
                   == 0,
       "list error: a NUL in a pattern");
    loyalty_bots_free(b);

    /* 3 and 128 bytes are patterns, 129 is not */
    memset(pat, 'p', sizeof(pat));
    pat[LOYALTY_BOT_PATTERN_MAX] = '\n';
    b = list(pat, LOYALTY_BOT_PATTERN_MAX + 1);
    ok(b && loyalty_bots_count(b) == 1, "a pattern of 128 bytes");
    ok(b && loyalty_bots_match(b, pat, LOYALTY_BOT_PATTERN_MAX) == 0
       && loyalty_bots_match(b, pat, LOYALTY_BOT_PATTERN_MAX - 1) == -1,
       "a pattern of 128 bytes matches itself and not 127 of its bytes");
    loyalty_bots_free(b);

    b = list(LIT("abc"));
    ok(b && loyalty_bots_count(b) == 1, "a pattern of 3 bytes");
    loyalty_bots_free(b);

    memset(pat, 'p', sizeof(pat));
    pat[LOYALTY_BOT_PATTERN_MAX + 1] = '\n';
    b = loyalty_bots_new();
    rc = loyalty_bots_add_list(b, pat, LOYALTY_BOT_PATTERN_MAX + 2, err,
                               sizeof(err));
    ok(rc == -1 && strcmp(err, "line 1: pattern longer than 128 bytes") == 0,
       "list error: a pattern of 129 bytes");

    /* spaces around a pattern do not count towards its length */
    rc = loyalty_bots_add_list(b, LIT("  \t abc \t  \r\n"), err, sizeof(err));
    ok(rc == 0 && loyalty_bots_count(b) == 1, "trimmed to 3 bytes");
    loyalty_bots_free(b);

    /* LOYALTY_BOTS_MAX patterns, in one list and then in two */
    text = malloc(LOYALTY_BOTS_MAX * 16);
    p = text;

    for (i = 0; i < LOYALTY_BOTS_MAX + 1; i++) {
        p += sprintf(p, "p%05zu\n", i);
    }

    len = (size_t) (p - text);

    b = list(text, LOYALTY_BOTS_MAX * 7);
    ok(b && loyalty_bots_count(b) == LOYALTY_BOTS_MAX, "%d patterns",
       LOYALTY_BOTS_MAX);
    ok(b && loyalty_bots_match(b, LIT("x P01023 y")) == 1023
       && loyalty_bots_match(b, LIT("p00000")) == 0
       && loyalty_bots_match(b, LIT("p01024")) == -1,
       "%d patterns: the first and last match", LOYALTY_BOTS_MAX);

    rc = b ? loyalty_bots_add_list(b, LIT("more\n"), err, sizeof(err)) : 0;
    ok(rc == -1 && strcmp(err, "line 1: more than 1024 patterns") == 0
       && loyalty_bots_count(b) == LOYALTY_BOTS_MAX,
       "a list after %d patterns: error", LOYALTY_BOTS_MAX);
    loyalty_bots_free(b);

    b = loyalty_bots_new();
    rc = loyalty_bots_add_list(b, text, len, err, sizeof(err));
    ok(rc == -1 && strcmp(err, "line 1025: more than 1024 patterns") == 0
       && loyalty_bots_count(b) == 0,
       "%d patterns in one list: error", LOYALTY_BOTS_MAX + 1);
    loyalty_bots_free(b);

    /* blank lines and comments do not count */
    p = text;
    for (i = 0; i < LOYALTY_BOTS_MAX; i++) {
        p += sprintf(p, "#\np%05zu\n", i);
    }
    b = list(text, (size_t) (p - text));
    ok(b && loyalty_bots_count(b) == LOYALTY_BOTS_MAX,
       "%d patterns between comments", LOYALTY_BOTS_MAX);
    loyalty_bots_free(b);

    free(text);

    /* a short error buffer is filled, not overrun */
    b = loyalty_bots_new();
    memset(err, 'x', sizeof(err));
    rc = loyalty_bots_add_list(b, LIT("ab\n"), err, 8);
    ok(rc == -1 && strcmp(err, "line 1:") == 0 && err[8] == 'x',
       "an error in 8 bytes");
    loyalty_bots_free(b);
}


static int
tolower_ascii(char c)
{
    return (c >= 'A' && c <= 'Z') ? c + 32 : (unsigned char) c;
}


/* the patterns that occur in ua, compared without regard to ASCII case */
static int
occurs(const char *pat, size_t plen, const char *ua, size_t len)
{
    size_t  i, k;

    for (i = 0; i + plen <= len; i++) {
        for (k = 0; k < plen; k++) {
            if (tolower_ascii(ua[i + k]) != tolower_ascii(pat[k])) {
                break;
            }
        }

        if (k == plen) {
            return 1;
        }
    }

    return 0;
}


/*
 * Many patterns of few letters, and UAs of the same letters, so that
 * pairs collide and near misses abound: match agrees with a brute-force
 * search on whether any pattern occurs, and what it finds does occur.
 */
static void
test_brute_force(void)
{
    int              bad, any;
    long             m;
    char             text[LOYALTY_BOTS_MAX * 8], ua[64];
    size_t           i, k, n, plen, len, hits;
    loyalty_bots_t  *b;
    const char      *pat;

    static const char  letters[] = "abcdABCD/ ";

    for (i = 0, n = 0; i < 200; i++) {
        plen = 4 + rng_byte() % 4;
        for (k = 0; k < plen; k++) {
            text[n++] = letters[rng_byte() % 8];
        }
        text[n++] = '\n';
    }

    b = list(text, n);
    ok(b && loyalty_bots_count(b) == 200, "200 random patterns");

    bad = 0;
    hits = 0;

    for (i = 0; b && i < 20000; i++) {
        len = rng_byte() % sizeof(ua);
        for (k = 0; k < len; k++) {
            ua[k] = letters[rng_byte() % (sizeof(letters) - 1)];
        }

        any = 0;
        for (k = 0; k < loyalty_bots_count(b); k++) {
            pat = loyalty_bots_pattern(b, k, &plen);
            if (occurs(pat, plen, ua, len)) {
                any = 1;
                break;
            }
        }

        m = loyalty_bots_match(b, ua, len);

        if (m >= 0) {
            hits++;
            pat = loyalty_bots_pattern(b, (size_t) m, &plen);
        }

        if ((m >= 0) != any
            || (m >= 0 && !occurs(pat, plen, ua, len)))
        {
            if (bad++ < 5) {
                diag("\"%.*s\": match %ld, brute force %d", (int) len, ua, m,
                     any);
            }
        }
    }

    ok(bad == 0 && hits > 2000 && hits < 18000,
       "20000 random UAs: match agrees with brute force (%zu matched)",
       hits);

    loyalty_bots_free(b);
}


static void
test_anchored(void)
{
    char             err[ERRLEN];
    loyalty_bots_t  *b;

    b = list(LIT("^viber/\ncurl/\n"));

    ok(b && loyalty_bots_match(b, LIT("Viber/20.9 CFNetwork/1410")) == 0
       && loyalty_bots_match(b, LIT("Mozilla/5.0 (Linux) Viber/21.6")) == -1
       && loyalty_bots_match(b, LIT("x curl/8")) == 1
       && loyalty_bots_match(b, LIT("Viber")) == -1,
       "\"^pattern\" only at the start of the User-Agent");

    loyalty_bots_free(b);

    b = loyalty_bots_new();
    ok(b && loyalty_bots_add_list(b, LIT("^ab\n"), err, sizeof(err)) == -1
       && strcmp(err, "line 1: pattern shorter than 3 bytes") == 0,
       "\"^\" is not part of a pattern's length");

    loyalty_bots_free(b);
}


static void
test_load(void)
{
    int              fd, rc, bad;
    long             m;
    char             err[ERRLEN], path[FIXTURE_PATH_MAX];
    char             ua[LOYALTY_BOT_PATTERN_MAX + 64], line[FIXTURE_PATH_MAX + 64];
    FILE            *f;
    size_t           i, n, len;
    loyalty_bots_t  *b;
    const char      *pat;

    static const char  bad_list[] = "good-one\n# fine\n\nxy\n";

    b = loyalty_bots_new();
    err[0] = '\0';
    rc = loyalty_bots_load(b, BOTS_TXT, err, sizeof(err));
    if (!ok(rc == 0, "%s loads", BOTS_TXT)) {
        diag("%s", err);
    }

    /* as many patterns as lines that are neither blank nor comments */
    n = 0;
    f = fopen(BOTS_TXT, "r");

    while (f && fgets(line, sizeof(line), f)) {
        len = strspn(line, " \t");
        if (line[len] != '#' && line[len] != '\n' && line[len] != '\0') {
            n++;
        }
    }

    if (f) {
        fclose(f);
    }

    ok(n >= 60 && loyalty_bots_count(b) == n,
       "%s: %zu patterns, one a line", BOTS_TXT, n);

    for (i = 0; i < nelts(bot_uas); i++) {
        m = loyalty_bots_match(b, bot_uas[i], strlen(bot_uas[i]));
        ok(m >= 0, "a bot: %s", bot_uas[i]);
    }

    for (i = 0; i < nelts(bare_uas); i++) {
        ok(loyalty_bots_bare(bare_uas[i], strlen(bare_uas[i])),
           "bare, so a bot: \"%s\"", bare_uas[i]);
    }

    for (i = 0; i < nelts(people_uas); i++) {
        m = loyalty_bots_match(b, people_uas[i], strlen(people_uas[i]));
        if (people_uas[i][0]) {
            ok(!loyalty_bots_bare(people_uas[i], strlen(people_uas[i])),
               "not bare: %s", people_uas[i]);
        }
        if (!ok(m == -1, "not a bot: %s", people_uas[i])) {
            diag("    matched \"%s\"", loyalty_bots_pattern(b, (size_t) m,
                                                          &len));
        }
    }

    /* each pattern of the list is found in a UA that contains it */
    bad = 0;

    for (i = 0; i < loyalty_bots_count(b); i++) {
        pat = loyalty_bots_pattern(b, i, &len);
        n = (size_t) sprintf(ua, "Mozilla/5.0 (compatible; %s)", pat);
        m = loyalty_bots_match(b, ua, n);

        if (m < 0) {
            /* "^pattern": only first */
            n = (size_t) sprintf(ua, "%s 1.0 (+https://example.com/)", pat);
            m = loyalty_bots_match(b, ua, n);
        }

        if (m < 0) {
            diag("\"%s\" not found", pat);
            bad++;
        }
    }

    ok(bad == 0, "every pattern of %s is found", BOTS_TXT);
    loyalty_bots_free(b);

    /* errors name the file, and the line */
    fd = mkstemp(fixture_tmp(path, "bots"));
    if (fd == -1 || write(fd, bad_list, sizeof(bad_list) - 1)
                    != (ssize_t) sizeof(bad_list) - 1)
    {
        diag("cannot write %s", path);
    }
    close(fd);

    b = loyalty_bots_new();
    rc = loyalty_bots_load(b, path, err, sizeof(err));
    snprintf(line, sizeof(line), "%s: line 4: pattern shorter than 3 bytes",
             path);
    ok(rc == -1 && strcmp(err, line) == 0 && loyalty_bots_count(b) == 0,
       "load: the error names the file and the line");
    if (rc != -1 || strcmp(err, line) != 0) {
        diag("    \"%s\"", err);
    }

    unlink(path);

    rc = loyalty_bots_load(b, path, err, sizeof(err));
    snprintf(line, sizeof(line), "%s: No such file or directory", path);
    is_str(err, line, "load: a missing file");
    is_int(rc, -1, "load: a missing file fails");

    rc = loyalty_bots_load(b, "/", err, sizeof(err));
    ok(rc == -1 && strcmp(err, "/: Is a directory") == 0,
       "load: a directory");

    loyalty_bots_free(b);
}


int
main(void)
{
    plan(1 + 6 + 17 + 2 + 2 + 4 + 3 + 5 + 2
         + nelts(list_errors) + 1 + 2 + 1 + 2 + 3 + 2 + 1
         + 2
         + 2 + nelts(bot_uas) + nelts(people_uas) + 1 + 4
         + 2 + nelts(bare_uas) + nelts(people_uas) - 1);

    test_lists();
    test_list_errors();
    test_brute_force();
    test_anchored();
    test_load();

    return done();
}

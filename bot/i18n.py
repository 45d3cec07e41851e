"""What the bot says, in Chinese and English, picked from Telegram's ``language_code``."""

from __future__ import annotations

from typing import Any

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "help_intro": "I write song lyrics with a small neural network I trained myself.",
        "help_now": "Now: temperature {temperature}, length {length}, rhymes {rhyme}.",
        "help_admin": "For admins:",
        "help_footer": 'Rate a lyric with the stars under it; "write again" gives another take. In any chat, type '
                       "@{bot} and your first words to pick a lyric and send it there.",
        "prefix_too_long": "That start is {length} characters; the limit is {limit}. Please send a shorter one.",
        "skipped": "(I have never seen these characters, so I left them out of my thinking: {chars})",
        "busy": "I'm busy right now. Please try again in about {seconds} seconds.",
        "rate_limited": "You're writing faster than I can sing. Try again in about {seconds} seconds.",
        "timeout": "That took too long, sorry. Please try again.",
        "failed": "Sorry, something went wrong on my side (error {error_id}).",
        "ask_prefix": "Send me the first line (reply to this message).",
        "temp_show": "Your temperature is {value}. Lower is safer, higher is wilder. Set it with /temp 0.8",
        "temp_usage": "Usage: /temp <number from {low} to {high}>, for example /temp 0.8",
        "temp_set": "Temperature set to {value}.",
        "len_show": "Answers are up to {value} characters. Set it with /len 200",
        "len_usage": "Usage: /len <whole number from {low} to {high}>, for example /len 200",
        "len_set": "Answer length set to {value} characters.",
        "rhyme_show": "Rhymes are {value}. Switch them with /rhyme on or /rhyme off",
        "rhyme_usage": "Usage: /rhyme on or /rhyme off",
        "rhyme_set": "Rhymes are now {value}.",
        "temp_show_group": "This group's temperature is {value}. Lower is safer, higher is wilder. Its administrators "
                           "set it with /temp 0.8 or /settings",
        "temp_set_group": "This group's temperature is now {value}.",
        "len_show_group": "Answers in this group are up to {value} characters. Its administrators set it with /len 200 "
                          "or /settings",
        "len_set_group": "Answers in this group are now up to {value} characters.",
        "rhyme_show_group": "Rhymes are {value} in this group. Its administrators switch them with /rhyme on|off or "
                            "/settings",
        "rhyme_set_group": "Rhymes are now {value} in this group.",
        "help_now_group": "In this group: temperature {temperature}, length {length}, rhymes {rhyme}. These are the "
                          "group's own settings, the same for everyone here (your personal ones apply in our private "
                          "chat); only its administrators change them, with /settings.",
        "settings_admins_only": "Only this group's administrators can change its settings.",
        "panel_private": "Your settings",
        "panel_group": "This group's settings: they apply to every /write here, whoever asks (personal settings "
                       "do not), and only its administrators can change them.",
        "panel_body": "Temperature: {temperature} (lower is safer, higher is wilder)\nLength: up to {length} "
                      "characters\nRhymes: {rhyme}\nStyle: {style}",
        "panel_footer": "Tap a button to change a setting; /temp, /len and /rhyme work too.",
        "panel_rhyme": "\u266a Rhymes: {value}",
        "panel_style": "\U0001f3a8 Style: {style} \u25b8",
        "panel_styles": "Pick a style:",
        "panel_back": "\u2039 Back",
        "panel_done": "Done",
        "panel_stale": "That button is out of date. Send /settings for a fresh panel.",
        "on": "on",
        "off": "off",
        "top_empty": "Nothing has been rated yet. Rate a lyric with the stars under it!",
        "top_item": "{rank}. {stars:.1f}\u2605 ({count} ratings)\n{text}",
        "stats": "You asked for {requests} lyrics, {answered} answered. You gave {ratings} ratings.{received}",
        "stats_received": " Your lyrics average {mean:.1f}\u2605.",
        "rated": "Thanks! You gave {stars}\u2605.",
        "button_foreign": "That button does not belong to this message.",
        "again_not_yours": "Only the person who asked can ask for another take. Send /write to get your own!",
        "write_again": "\u21bb write again",
        "no_output": "I could not write anything worth showing for that start. Try another one?",
        "share": "\u2197 send to a chat",
        "inline_empty": "Type the first words of a song after my name",
        "inline_how": "Type @{bot} and the first words of a lyric in any chat: I offer three to choose from.",
        "inline_too_long": "That start is too long: {limit} characters at most",
        "inline_unknown": "I know none of these characters: try words in Chinese or English",
        "inline_open_chat": "Open a chat with me",
        "inline_not_recorded": "I cannot find this lyric any more, so the rating was not saved.",
        "style_default": "Default",
        "style_show_private": "You write in the style: {style}. Tap another one, or send /style <name>.",
        "style_show_group": "This group writes in the style: {style}. Its administrators can tap another one.",
        "style_set": "Style set to {style}.",
        "style_unknown": "There is no style \"{name}\". Styles you can pick: {names}",
        "style_admins_only": "Only this group's administrators can change its style.",
        "style_gone": "(The style \"{name}\" was removed, so I wrote this in the default style.)",
    },
    "zh": {
        "help_intro": "我用自己训练的小神经网络写歌词。",
        "help_now": "现在：温度 {temperature}，长度 {length}，押韵{rhyme}。",
        "help_admin": "管理员命令：",
        "help_footer": "点歌词下面的星星来评分；“再写一首”换一个版本。"
                       "在任何聊天里输入 @{bot} 加上开头，就能挑一首发到那里。",
        "prefix_too_long": "开头有 {length} 个字，上限是 {limit} 个字，请短一点。",
        "skipped": "（这些字我没学过，写的时候略过了：{chars}）",
        "busy": "我现在有点忙，请大约 {seconds} 秒后再试。",
        "rate_limited": "你写得太快啦，请大约 {seconds} 秒后再试。",
        "timeout": "写得太久了，抱歉，请再试一次。",
        "failed": "抱歉，我这边出错了（错误编号 {error_id}）。",
        "ask_prefix": "请回复这条消息，发给我第一句歌词。",
        "temp_show": "你的温度是 {value}。越低越稳，越高越野。用 /temp 0.8 来设置",
        "temp_usage": "用法：/temp <{low} 到 {high} 之间的数>，例如 /temp 0.8",
        "temp_set": "温度已设为 {value}。",
        "len_show": "歌词最长 {value} 个字。用 /len 200 来设置",
        "len_usage": "用法：/len <{low} 到 {high} 之间的整数>，例如 /len 200",
        "len_set": "歌词长度已设为 {value} 个字。",
        "rhyme_show": "押韵现在是{value}的。用 /rhyme on 或 /rhyme off 来切换",
        "rhyme_usage": "用法：/rhyme on 或 /rhyme off",
        "rhyme_set": "押韵已{value}。",
        "temp_show_group": "这个群的温度是 {value}。越低越稳，越高越野。群管理员可以用 /temp 0.8 或 /settings 来设置",
        "temp_set_group": "这个群的温度已设为 {value}。",
        "len_show_group": "这个群里的歌词最长 {value} 个字。群管理员可以用 /len 200 或 /settings 来设置",
        "len_set_group": "这个群里的歌词长度已设为 {value} 个字。",
        "rhyme_show_group": "这个群的押韵现在是{value}的。群管理员可以用 /rhyme on|off 或 /settings 来切换",
        "rhyme_set_group": "这个群的押韵已{value}。",
        "help_now_group": "这个群现在：温度 {temperature}，长度 {length}，押韵{rhyme}。这是群自己的设置，"
                          "对群里每个人都一样（你的个人设置只在我们的私聊里用）；只有群管理员能用 /settings 修改。",
        "settings_admins_only": "只有这个群的管理员才能改它的设置。",
        "panel_private": "你的设置",
        "panel_group": ("这个群的设置：群里每一次 /write 都用它，不管是谁发的（个人设置在群里不生效），"
                        "只有群管理员能修改。"),
        "panel_body": ("温度：{temperature}（越低越稳，越高越野）\n长度：最多 {length} 个字\n押韵：{rhyme}\n"
                       "风格：{style}"),
        "panel_footer": "点按钮修改设置；/temp、/len 和 /rhyme 也照样能用。",
        "panel_rhyme": "\u266a 押韵：{value}",
        "panel_style": "\U0001f3a8 风格：{style} \u25b8",
        "panel_styles": "选一个风格：",
        "panel_back": "\u2039 返回",
        "panel_done": "完成",
        "panel_stale": "这个按钮已经过时了。发 /settings 打开新的设置面板。",
        "on": "开",
        "off": "关",
        "top_empty": "还没有人评分。点歌词下面的星星来评分吧！",
        "top_item": "{rank}. {stars:.1f}\u2605（{count} 个评分）\n{text}",
        "stats": "你请求了 {requests} 首歌词，已回答 {answered} 首，你评了 {ratings} 次分。{received}",
        "stats_received": "你的歌词平均 {mean:.1f}\u2605。",
        "rated": "谢谢！你打了 {stars}\u2605。",
        "button_foreign": "这个按钮不属于这条消息。",
        "again_not_yours": "只有提问的人才能让我再写一首。发 /write 来要你自己的吧！",
        "write_again": "\u21bb 再写一首",
        "no_output": "这个开头我写不出像样的歌词，换一个试试？",
        "share": "\u2197 发到聊天",
        "inline_empty": "在我的名字后面输入歌词的开头",
        "inline_how": "在任何聊天里输入 @{bot} 和歌词的开头，我会写三首给你挑。",
        "inline_too_long": "开头太长了：最多 {limit} 个字",
        "inline_unknown": "这些字我都不认识，试试中文或英文",
        "inline_open_chat": "和我私聊",
        "inline_not_recorded": "找不到这首歌词了，评分没有保存。",
        "style_default": "默认",
        "style_show_private": "你现在的风格：{style}。点另一个，或者发 /style <名字>。",
        "style_show_group": "这个群现在的风格：{style}。群管理员可以点另一个。",
        "style_set": "风格已设为 {style}。",
        "style_unknown": "没有叫“{name}”的风格。可以选的风格：{names}",
        "style_admins_only": "只有这个群的管理员才能改它的风格。",
        "style_gone": "（风格“{name}”已经删除了，所以这首用默认风格写。）",
    },
}


def language(code: str | None) -> str:
    return "zh" if code and code.lower().startswith("zh") else "en"


def t(lang: str, key: str, **values: Any) -> str:
    """The message ``key`` in ``lang`` (English when missing), filled with ``values``."""
    template = MESSAGES.get(lang, MESSAGES["en"]).get(key) or MESSAGES["en"][key]
    return template.format(**values)

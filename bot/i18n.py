"""What the bot says, in Chinese and English, picked from Telegram's ``language_code``."""

from __future__ import annotations

from typing import Any

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "help_intro": "I write song lyrics with a small neural network I trained myself.",
        "help_now": "Now: temperature {temperature}, length {length}, rhymes {rhyme}.",
        "help_admin": "For admins:",
        "help_footer": 'Rate a lyric with the stars under it; "write again" gives another take.',
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
    },
    "zh": {
        "help_intro": "我用自己训练的小神经网络写歌词。",
        "help_now": "现在：温度 {temperature}，长度 {length}，押韵{rhyme}。",
        "help_admin": "管理员命令：",
        "help_footer": "点歌词下面的星星来评分；“再写一首”换一个版本。",
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
    },
}


def language(code: str | None) -> str:
    return "zh" if code and code.lower().startswith("zh") else "en"


def t(lang: str, key: str, **values: Any) -> str:
    """The message ``key`` in ``lang`` (English when missing), filled with ``values``."""
    template = MESSAGES.get(lang, MESSAGES["en"]).get(key) or MESSAGES["en"][key]
    return template.format(**values)

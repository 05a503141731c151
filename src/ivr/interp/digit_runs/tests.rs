use super::mask_digit_runs as mask;

#[test]
fn ascii_digit_runs_as_before() {
    assert_eq!(mask("13800138000"), "***********");
    assert_eq!(
        mask("卡号 6222 0212 3456 7890 充不进去"),
        "卡号 ****************充不进去"
    );
    assert_eq!(mask("press 1 or 2"), "press 1 or 2");
    assert_eq!(mask("room 101, please"), "room 101, please");
    assert_eq!(mask("PIN 123456"), "PIN ******");
    assert_eq!(mask("138-0013-8000"), "***********");
}

#[test]
fn chinese_numerals_read_digit_by_digit_are_digits() {
    assert_eq!(mask("一三八零零一三八零零零"), "***********");
    assert_eq!(
        mask("我的号码是幺三八零零幺三八零零零"),
        "我的号码是***********"
    );
    assert_eq!(mask("幺三八 零零幺三，八零零零"), "***********");
    assert_eq!(mask("密码是一二三四五六"), "密码是******");
    assert_eq!(mask("密码是 1 二 3 四 5 六 谢谢"), "密码是 ******谢谢");
    assert_eq!(mask("壹贰叁肆伍陆"), "******");
    assert_eq!(mask("两〇〇七"), "****");
}

#[test]
fn chinese_words_that_are_not_numbers_stay() {
    for s in [
        "我想查一下话费",
        "统一一个账户",
        "两三天了",
        "一百三十八块",
        "第一个",
    ] {
        assert_eq!(mask(s), s);
    }
}

#[test]
fn english_digit_words_are_digits() {
    assert_eq!(
        mask("one three eight zero zero one three eight zero zero zero"),
        "***********"
    );
    assert_eq!(
        mask("my number is One Three Eight, oh oh one three, eight oh oh oh"),
        "my number is ***********"
    );
    assert_eq!(mask("pin one two three four five six."), "pin ******.");
    assert_eq!(mask("one three eight double oh"), "*****");
    assert_eq!(mask("triple seven"), "triple seven", "three digits stay");
    assert_eq!(mask("triple seven two"), "****");
    assert_eq!(mask("one two 3 4"), "****");
}

#[test]
fn english_words_that_are_not_numbers_stay() {
    for s in [
        "I want one thing",
        "someone called twice",
        "oh no, my bill is wrong",
        "double charged on two cards",
        "one or two",
    ] {
        assert_eq!(mask(s), s);
    }
}

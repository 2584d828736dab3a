// ukey ui: the page. Plain JavaScript, no framework, nothing from the
// network: everything comes from the ukey process that served this page.
// What it shows is `ukey status --json` (pushed as server-sent events when a
// key is plugged in or pulled); what it does are the `ukey renew` steps.
"use strict";

const CSRF = document.querySelector('meta[name="ukey-csrf"]').content;

// ---- words ------------------------------------------------------------

const T = {
  en: {
    title: "ukey — certificates on your USB key",
    tab_certs: "My certificates", tab_renew: "Certificate renewal", tab_diag: "Driver and diagnostics",
    live: "live", offline: "not connected",
    stopped: "The ukey ui program is not running any more: start it again (ukey ui) to continue.",
    banner_title: "Do not remove the key!",
    banner_text: "The certificate is being installed. Pulling the key now interrupts the installation (a complete key pair stays on it; you can finish later).",
    key: "Key {serial}", key_noserial: "Key in {reader}", simulated: "simulated",
    firmware: "PIV firmware {v}",
    pin_tries: "PIN tries remaining: {n}", pin_tries_of: "PIN tries remaining: {n} of {t}",
    pin_blocked: "The PIN is blocked: unblock it with the PUK (ukey pin unblock).",
    pin_unknown: "PIN tries: not shown by this key right now",
    puk_tries: "PUK tries remaining: {n} of {t}", puk_unknown: "PUK tries: unknown (this key cannot tell without spending one)",
    default_pin: "The PIN is still the factory default: change it (ukey pin change).",
    no_token: "No USB key found. Plug in your key: it appears here by itself.",
    token_failed: "This key could not be read: {e}",
    col_slot: "Slot", col_role: "Role", col_subject: "Subject", col_issuer: "Issuer",
    col_from: "Valid from", col_to: "Valid to", col_days: "Days left", col_status: "Renewal",
    days: "{n} days", day1: "less than a day", expired_days: "expired",
    v_renewable: "Renewable now ({d} left)",
    v_ok: "Valid — renewable from {date}",
    v_expired: "Expired — online renewal is no longer possible: renew in person at your CA (service counter or by post)",
    v_missing: "No certificate", v_unusable: "Unusable",
    v_superseded: "Replaced by the renewed pair in retired slot {r} (renewed {date}); kept until it expires for applications pinned to this slot",
    renewed_pair: "{role} — renewed pair of slot {t}",
    renewed_home: "The pair in use is the renewed one in retired slot {r}.",
    retired_confirm: "Key {serial} cannot move keys (firmware before 5.7): the new key pair will stay in a retired slot. Applications that find keys by their certificate (Firefox, Chromium, Thunderbird and other NSS applications) use the new pair; those pinned to slot {slot} (pkcs11:id URIs, yubico-piv-tool -s {slot}, Windows smart-card logon, SSH servers listing the old key) keep the old key until it expires. Apply anyway?",
    no_cert_key: "key without certificate",
    staged_for: "new key of the renewal of slot {t}",
    role_9a: "PIV Authentication", role_9c: "Digital Signature", role_9d: "Key Management", role_9e: "Card Authentication",
    role_retired: "Retired Key Management {n}",
    renewal_intro: "Online renewal is possible in the last {w} days before a certificate expires. Insert only the key you renew; every action names its key.",
    apply: "Apply for renewal", install: "Install certificate", finish: "Finish installation",
    show_request: "Show the request again", cancel_renewal: "Cancel renewal",
    ph_key_pending: "The key generation did not finish: apply again to finish it.",
    ph_awaiting: "Renewal applied on {date}: waiting for the CA's certificate (the new key is in slot {r}). The certificate in use keeps working until you install the new one.",
    ph_interrupted: "The installation was interrupted. The key holds a complete key pair: finish the installation with the same certificate file.",
    ph_missing: "The new key of this renewal is no longer on the key: cancel the renewal, then apply again.",
    ph_cancelling: "A cancellation did not finish: cancel again to finish it.",
    not_due: "Not due: renewable from {date}.",
    expired_short: "Expired: renew in person at your CA.",
    nothing_to_renew: "No certificate on this key.",
    pin_title: "PIN of key {serial}",
    pin_for_apply: "Apply for the renewal of slot {slot} ({role}): a new key pair is generated on the key.",
    pin_for_install: "Install the certificate in slot {slot} ({role}).",
    pin_for_request: "Sign the request of slot {slot} again with the new key.",
    pin_for_cancel: "Cancel the renewal of slot {slot}: its new key is deleted; the certificate in use stays.",
    pin_label: "PIN", pin_hint: "Insert only this key while the operation runs. Do not pull it until it has finished.",
    pin_last: "LAST TRY: one more wrong PIN BLOCKS the PIN. Only the PUK can unblock it then. If you are not sure of the PIN, stop here.",
    pin_wrong: "Wrong PIN. {n} tries left.", pin_wrong1: "Wrong PIN. 1 try left.",
    pin_length: "The PIN has 6 to 8 characters.",
    cancel: "Cancel", ok: "OK", close: "Close",
    generating: "Generating the new key pair on key {serial}, slot {slot} — a real key can take up to a minute. Do not pull it.",
    working: "Working on key {serial}…",
    request_title: "Renewal request for key {serial}, slot {slot}",
    request_done: "The new key is on your USB key (slot {r}); the key and certificate in use stay until you install the new certificate. The staged renewal is kept on the key itself: you may close this page, or install on another computer.",
    request_send: "Send this request (PKCS#10, PEM) to your CA through its renewal service: upload or paste it there. It holds only your public key and your name ({subject}), never a secret. When the CA has issued the certificate, come back to this tab and choose \"Install certificate\".",
    download: "Download req.pem", copy: "Copy", copied: "Copied",
    install_title: "Install the certificate on key {serial}, slot {slot}",
    finish_title: "Finish the installation on key {serial}, slot {slot}",
    pick: "Drop the certificate file from your CA here, or choose it:",
    pick_again: "Choose the same certificate file again to finish:",
    checking: "Checking the certificate…",
    preview_title: "What will happen",
    cert_for: "Certificate for {subject}", cert_issuer: "issued by {issuer}",
    cert_validity: "valid from {from} to {to} ({days})",
    checks_title: "Checks passed",
    chk_wrong_key: "it certifies the new key staged on this key",
    chk_ca: "it is not a CA certificate",
    chk_expired: "it has not expired",
    chk_not_yet_valid: "it is valid now",
    chk_key_usage: "its key usage fits the slot",
    chk_issuer_changed: "same issuer as the certificate in use",
    issuer_changed: "Another issuer than the certificate in use: now {old}, new {new}.",
    accept_issuer: "I expected the new issuer: install it anyway",
    not_yet_valid: "This certificate is valid only from {date}: it is written next to the new key now, and the pair in use stays until then (install again on or after that date).",
    accept_not_yet: "Write it next to the new key now",
    subject_changed: "The CA changed the name: {w}",
    already: "This certificate is already installed in slot {slot}: nothing to do.",
    steps_title: "Steps (at every step a complete key pair stays on the key)",
    st_certificate_into_staged_slot: "write the certificate next to the new key (slot {r}) and read it back",
    st_claim_renewal: "mark the renewal as being installed",
    st_certificate_into_target_slot: "write the certificate into slot {t} and read it back",
    st_delete_old_key: "delete the old key from slot {t}",
    st_move_key: "move the new key from slot {r} into {t}",
    st_clear_staged_slot: "empty slot {r}",
    st_clear_marker: "clear the renewal marker",
    do_install: "Install", do_finish: "Finish installation",
    installing: "Installing on key {serial}…",
    installed_title: "Renewed: key {serial}, slot {slot}",
    installed_text: "Slot {slot} holds the new key and certificate (read back from the key).",
    installed_retired: "This key cannot move keys: the renewed pair stays in slot {home}, where applications find it.",
    held_text: "The new certificate is written next to the new key; the pair in use stays until {date}. Install again on or after that date.",
    new_validity: "New validity: {from} to {to} ({days} left)",
    cancelled: "The renewal of slot {slot} is cancelled; the certificate in use is unchanged.",
    cancel_confirm: "Cancel the renewal of slot {slot} on key {serial}? The new key and its request are deleted; the key and certificate in use stay.",
    failed: "Failed", back: "Back",
    e_busy: "Another operation on this key is running: wait until it has finished.",
    e_token_removed: "The key was removed during the operation. Plug it in again and finish: a complete key pair is on it.",
    e_pin_locked: "The PIN is blocked: unblock it with the PUK (ukey pin unblock). Nothing was done.",
    e_refused: "The certificate was refused; nothing was written.",
    r_ca: "It is a CA's certificate, not one for your key (did the CA send its own certificate?).",
    r_expired: "It has expired.", r_not_yet_valid: "It is not valid yet.",
    r_key_usage: "Its key usage does not fit the slot.", r_issuer_changed: "It comes from another issuer.",
    r_wrong_key: "It is for another key: was it issued for another request?",
    r_too_large: "The file is too large to be a certificate.",
    e_not_staged: "No renewal is staged on this key for that certificate: apply for renewal first.",
    diag_refresh: "Check again", diag_readers: "Readers and keys", diag_none: "none",
    diag_pcscd: "Smart card service (pcscd)", pcsc_running: "running", pcsc_not_running: "not running",
    pcsc_skipped: "not used (UKEY_NO_PCSC)",
    diag_module: "PKCS#11 module", diag_p11kit: "p11-kit",
    p11kit_yes: "loads ukey ({files})", p11kit_no: "does not load ukey (install it: sudo scripts/install-module, or the ukey .deb)",
    p11kit_missing: "not installed",
    diag_nss: "Browsers and other NSS programs", nss_none: "No NSS database found (Firefox profiles, ~/.pki/nssdb).",
    nss_registered: "ukey registered", nss_not: "ukey not registered", nss_in_use: "Firefox is open: close it to register",
    register: "Register ukey", nss_firefox: "Firefox profile", nss_chromium: "Chromium and NSS tools",
    diag_sim: "Simulated keys",
    diag_report: "Diagnostic report", report_copy: "Copy diagnostic report",
    report_note: "For support: it holds no PIN, PUK or key material (the APDU trace is redacted).",
    col_reader: "Reader", col_card: "Card", col_fw: "Firmware", col_serial: "Serial",
    card_in: "present", card_out: "empty",
  },
  zh: {
    title: "ukey — USB Key 证书",
    tab_certs: "我的证书", tab_renew: "证书续期", tab_diag: "驱动与诊断",
    live: "实时", offline: "未连接",
    stopped: "ukey ui 程序已停止运行：请重新启动（ukey ui）后继续。",
    banner_title: "请勿拔出 Key！",
    banner_text: "正在安装证书。此时拔出 Key 会中断安装（Key 中仍保留完整的密钥对，可以稍后完成安装）。",
    key: "Key {serial}", key_noserial: "{reader} 中的 Key", simulated: "模拟",
    firmware: "PIV 固件 {v}",
    pin_tries: "PIN 剩余尝试次数：{n}", pin_tries_of: "PIN 剩余尝试次数：{n}（共 {t} 次）",
    pin_blocked: "PIN 已锁定：请用 PUK 解锁（ukey pin unblock）。",
    pin_unknown: "PIN 尝试次数：此 Key 当前不显示",
    puk_tries: "PUK 剩余尝试次数：{n}（共 {t} 次）", puk_unknown: "PUK 尝试次数：未知（此 Key 不消耗一次尝试就无法告知）",
    default_pin: "PIN 仍是出厂默认值：请修改（ukey pin change）。",
    no_token: "未找到 USB Key。请插入您的 Key，它会自动显示在这里。",
    token_failed: "无法读取此 Key：{e}",
    col_slot: "槽位", col_role: "用途", col_subject: "持有者", col_issuer: "颁发者",
    col_from: "生效时间", col_to: "到期时间", col_days: "剩余天数", col_status: "续期",
    days: "{n} 天", day1: "不足一天", expired_days: "已过期",
    v_renewable: "现在可以续期（剩余 {d}）",
    v_ok: "有效 — {date} 起可续期",
    v_expired: "已过期 — 无法在线续期：请到 CA 服务网点办理或邮寄材料",
    v_missing: "无证书", v_unusable: "不可用",
    v_superseded: "已由退役槽位 {r} 中续期的密钥对取代（{date} 续期）；为固定使用此槽位的应用保留至到期",
    renewed_pair: "{role} — 槽位 {t} 的续期密钥对",
    renewed_home: "当前使用的是退役槽位 {r} 中续期的密钥对。",
    retired_confirm: "Key {serial} 不能移动密钥（固件低于 5.7）：新的密钥对将保留在退役槽位中。按证书查找密钥的应用（Firefox、Chromium、Thunderbird 等 NSS 应用）会使用新密钥对；固定使用槽位 {slot} 的应用（pkcs11:id URI、yubico-piv-tool -s {slot}、Windows 智能卡登录、列出旧公钥的 SSH 服务器）在旧密钥到期前继续使用旧密钥。仍要申请吗？",
    no_cert_key: "无证书的密钥",
    staged_for: "槽位 {t} 续期的新密钥",
    role_9a: "PIV 身份认证", role_9c: "数字签名", role_9d: "密钥管理", role_9e: "卡认证",
    role_retired: "退役密钥管理 {n}",
    renewal_intro: "证书到期前 {w} 天内可以在线续期。请只插入要续期的 Key；每个操作都会注明所针对的 Key。",
    apply: "申请续期", install: "安装证书", finish: "完成安装",
    show_request: "再次显示申请", cancel_renewal: "取消续期",
    ph_key_pending: "密钥生成未完成：请再次申请以完成。",
    ph_awaiting: "已于 {date} 申请续期：等待 CA 签发证书（新密钥在槽位 {r}）。在安装新证书之前，当前证书继续有效。",
    ph_interrupted: "安装被中断。Key 中保留着完整的密钥对：请用同一个证书文件完成安装。",
    ph_missing: "此次续期的新密钥已不在 Key 中：请取消续期后重新申请。",
    ph_cancelling: "取消操作未完成：请再次取消以完成。",
    not_due: "尚未到期：{date} 起可续期。",
    expired_short: "已过期：请到 CA 网点办理。",
    nothing_to_renew: "此 Key 中没有证书。",
    pin_title: "Key {serial} 的 PIN",
    pin_for_apply: "申请续期槽位 {slot}（{role}）：将在 Key 中生成新的密钥对。",
    pin_for_install: "将证书安装到槽位 {slot}（{role}）。",
    pin_for_request: "用新密钥重新签署槽位 {slot} 的证书申请。",
    pin_for_cancel: "取消槽位 {slot} 的续期：删除其新密钥；当前证书保持不变。",
    pin_label: "PIN", pin_hint: "操作期间请只插入此 Key，完成前请勿拔出。",
    pin_last: "最后一次尝试：再输错一次 PIN 将被锁定，之后只能用 PUK 解锁。如果不确定 PIN，请停止。",
    pin_wrong: "PIN 错误，剩余 {n} 次尝试。", pin_wrong1: "PIN 错误，仅剩 1 次尝试。",
    pin_length: "PIN 为 6 到 8 个字符。",
    cancel: "取消", ok: "确定", close: "关闭",
    generating: "正在 Key {serial} 的槽位 {slot} 中生成新的密钥对 — 真实的 Key 可能需要一分钟。请勿拔出。",
    working: "正在处理 Key {serial}…",
    request_title: "Key {serial} 槽位 {slot} 的续期申请",
    request_done: "新密钥已在您的 USB Key 中（槽位 {r}）；在安装新证书之前，当前的密钥和证书保持不变。续期状态保存在 Key 本身：您可以关闭此页面，也可以在另一台电脑上安装。",
    request_send: "请通过 CA 的续期服务提交此申请（PKCS#10，PEM 格式）：上传或粘贴。其中只有您的公钥和名称（{subject}），不含任何秘密。CA 签发证书后，请回到此页选择“安装证书”。",
    download: "下载 req.pem", copy: "复制", copied: "已复制",
    install_title: "在 Key {serial} 槽位 {slot} 安装证书",
    finish_title: "在 Key {serial} 槽位 {slot} 完成安装",
    pick: "将 CA 发来的证书文件拖到这里，或选择文件：",
    pick_again: "请再次选择同一个证书文件以完成安装：",
    checking: "正在检查证书…",
    preview_title: "将要进行的操作",
    cert_for: "{subject} 的证书", cert_issuer: "颁发者 {issuer}",
    cert_validity: "有效期 {from} 至 {to}（{days}）",
    checks_title: "已通过的检查",
    chk_wrong_key: "证书对应 Key 中待续期的新密钥",
    chk_ca: "不是 CA 证书",
    chk_expired: "证书未过期",
    chk_not_yet_valid: "证书现在有效",
    chk_key_usage: "密钥用途适合此槽位",
    chk_issuer_changed: "颁发者与当前证书相同",
    issuer_changed: "颁发者与当前证书不同：当前 {old}，新 {new}。",
    accept_issuer: "我知道颁发者已更换：仍然安装",
    not_yet_valid: "此证书自 {date} 起才生效：现在写入新密钥旁边，在此之前继续使用当前密钥对（到期后再次安装）。",
    accept_not_yet: "现在写入新密钥旁边",
    subject_changed: "CA 修改了名称：{w}",
    already: "此证书已安装在槽位 {slot}：无需操作。",
    steps_title: "步骤（每一步 Key 中都保留完整的密钥对）",
    st_certificate_into_staged_slot: "将证书写入新密钥所在的槽位 {r} 并读回校验",
    st_claim_renewal: "标记续期为安装中",
    st_certificate_into_target_slot: "将证书写入槽位 {t} 并读回校验",
    st_delete_old_key: "删除槽位 {t} 中的旧密钥",
    st_move_key: "将新密钥从槽位 {r} 移入 {t}",
    st_clear_staged_slot: "清空槽位 {r}",
    st_clear_marker: "清除续期标记",
    do_install: "安装", do_finish: "完成安装",
    installing: "正在 Key {serial} 上安装…",
    installed_title: "续期完成：Key {serial}，槽位 {slot}",
    installed_text: "槽位 {slot} 中是新的密钥和证书（已从 Key 读回校验）。",
    installed_retired: "此 Key 不能移动密钥：续期后的密钥对保留在槽位 {home}，应用程序可以在那里找到它。",
    held_text: "新证书已写入新密钥旁边；在 {date} 之前继续使用当前密钥对。请在该日期当天或之后再次安装。",
    new_validity: "新的有效期：{from} 至 {to}（剩余 {days}）",
    cancelled: "槽位 {slot} 的续期已取消；当前证书保持不变。",
    cancel_confirm: "取消 Key {serial} 槽位 {slot} 的续期？新密钥及其申请将被删除；当前的密钥和证书保持不变。",
    failed: "失败", back: "返回",
    e_busy: "此 Key 上正在进行另一个操作：请等待其完成。",
    e_token_removed: "操作过程中 Key 被拔出。请重新插入并完成操作：Key 中保留着完整的密钥对。",
    e_pin_locked: "PIN 已锁定：请用 PUK 解锁（ukey pin unblock）。未进行任何操作。",
    e_refused: "证书被拒绝；未写入任何内容。",
    r_ca: "这是 CA 的证书，不是您的 Key 的证书（CA 是否发错了文件？）。",
    r_expired: "证书已过期。", r_not_yet_valid: "证书尚未生效。",
    r_key_usage: "证书的密钥用途不适合此槽位。", r_issuer_changed: "证书来自另一个颁发者。",
    r_wrong_key: "证书对应的是另一个密钥：是否为另一个申请签发的？",
    r_too_large: "文件太大，不是证书文件。",
    e_not_staged: "此 Key 上没有与该证书对应的续期：请先申请续期。",
    diag_refresh: "重新检查", diag_readers: "读卡器和 Key", diag_none: "无",
    diag_pcscd: "智能卡服务（pcscd）", pcsc_running: "正在运行", pcsc_not_running: "未运行",
    pcsc_skipped: "未使用（UKEY_NO_PCSC）",
    diag_module: "PKCS#11 模块", diag_p11kit: "p11-kit",
    p11kit_yes: "已加载 ukey（{files}）", p11kit_no: "未加载 ukey（请安装：sudo scripts/install-module 或 ukey 的 .deb 包）",
    p11kit_missing: "未安装",
    diag_nss: "浏览器和其他 NSS 程序", nss_none: "未找到 NSS 数据库（Firefox 配置文件、~/.pki/nssdb）。",
    nss_registered: "已注册 ukey", nss_not: "未注册 ukey", nss_in_use: "Firefox 正在运行：请关闭后再注册",
    register: "注册 ukey", nss_firefox: "Firefox 配置文件", nss_chromium: "Chromium 和 NSS 工具",
    diag_sim: "模拟 Key",
    diag_report: "诊断报告", report_copy: "复制诊断报告",
    report_note: "用于技术支持：报告中不含 PIN、PUK 或密钥（APDU 记录已脱敏）。",
    col_reader: "读卡器", col_card: "卡", col_fw: "固件", col_serial: "序列号",
    card_in: "已插入", card_out: "空",
  },
};

function pickLang() {
  const saved = localStorage.getItem("ukey-lang");
  if (saved === "en" || saved === "zh") return saved;
  const langs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || "en"];
  for (const l of langs) {
    const p = String(l).toLowerCase();
    if (p.startsWith("zh")) return "zh";
    if (p.startsWith("en")) return "en";
  }
  return "en";
}

let lang = pickLang();

function t(key, vars) {
  let s = (T[lang] && T[lang][key]) || T.en[key] || key;
  if (vars) {
    for (const [k, v] of Object.entries(vars)) s = s.split("{" + k + "}").join(String(v));
  }
  return s;
}

function locale() {
  const nav = navigator.language || "";
  if (lang === "zh") return nav.toLowerCase().startsWith("zh") ? nav : "zh-CN";
  return nav.toLowerCase().startsWith("en") ? nav : "en-US";
}

// Dates in local time.
function when(iso) {
  const d = new Date(iso);
  if (isNaN(d)) return iso;
  return d.toLocaleString(locale(), { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

function day(iso) {
  const d = new Date(iso);
  if (isNaN(d)) return iso;
  return d.toLocaleDateString(locale(), { year: "numeric", month: "short", day: "numeric" });
}

function daysText(n) {
  if (n <= 0) return t("expired_days");
  if (n === 1) return t("day1");
  return t("days", { n });
}

// ---- DOM helpers ------------------------------------------------------

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return e;
}

// Append the kids that are there (conditional parts may be null).
function put(parent, ...kids) {
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    parent.append(kid);
  }
}

function clear(e) {
  while (e.firstChild) e.removeChild(e.firstChild);
  return e;
}

// ---- state ------------------------------------------------------------

const state = {
  tab: "certs",
  status: null,      // the `ukey status --json` document
  error: null,       // why there is none
  flow: null,        // the renewal in progress on the page
  diag: null,
  report: null,
  connected: false,
};

function tokens() {
  return (state.status && state.status.tokens) || [];
}

function window_days() {
  return (state.status && state.status.window_days) || 90;
}

function keyName(tok) {
  return tok.serial != null ? t("key", { serial: tok.serial }) : t("key_noserial", { reader: tok.reader });
}

function role(slot) {
  const k = "role_" + slot;
  if (T.en[k]) return t(k);
  const n = parseInt(slot, 16);
  if (n >= 0x82 && n <= 0x95) return t("role_retired", { n: n - 0x81 });
  return slot;
}

function findToken(reader, serial) {
  return tokens().find((x) => x.reader === reader && (x.serial ?? null) === (serial ?? null));
}

// ---- tabs and language ---------------------------------------------------

function applyWords() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.title = t("title");
  for (const e of document.querySelectorAll("[data-t]")) e.textContent = t(e.dataset.t);
  document.getElementById("lang").textContent = lang === "zh" ? "English" : "中文";
  setLive(state.connected);
}

function showTab(tab) {
  state.tab = tab;
  for (const b of document.querySelectorAll("nav button")) b.classList.toggle("active", b.dataset.tab === tab);
  for (const name of ["certs", "renew", "diag"]) document.getElementById("panel-" + name).hidden = name !== tab;
  if (tab === "diag" && !state.diag) loadDiagnostics();
  renderAll();
}

function setLive(on) {
  state.connected = on;
  const e = document.getElementById("live");
  e.className = "live " + (on ? "on" : "off");
  e.textContent = on ? t("live") : t("offline");
}

// ---- My certificates ------------------------------------------------------

function verdictText(s, w) {
  const c = s.certificate;
  switch (s.verdict) {
    case "renewable": return t("v_renewable", { d: daysText(c.days_left) });
    case "ok": {
      const from = new Date(new Date(c.not_after).getTime() - w * 86400000).toISOString();
      return t("v_ok", { date: day(from) });
    }
    case "expired": return t("v_expired");
    case "missing": return t("v_missing");
    case "superseded": return t("v_superseded", { r: s.superseded_by.slot.toUpperCase(), date: day(s.superseded_by.renewed) });
    default: return t("v_unusable") + (s.problem ? ": " + s.problem : "");
  }
}

function tokenHeader(tok) {
  const meta = [tok.reader];
  if (tok.version) meta.push(t("firmware", { v: tok.version }));
  const counters = [];
  if (tok.pin) {
    counters.push(tok.pin.tries_left === 0 ? t("pin_blocked")
      : tok.pin.tries_total ? t("pin_tries_of", { n: tok.pin.tries_left, t: tok.pin.tries_total })
      : t("pin_tries", { n: tok.pin.tries_left }));
  } else counters.push(t("pin_unknown"));
  counters.push(tok.puk ? t("puk_tries", { n: tok.puk.tries_left, t: tok.puk.tries_total ?? "?" }) : t("puk_unknown"));
  return [
    el("h2", {}, keyName(tok), tok.source === "sim" ? el("span", { class: "tag", text: t("simulated") }) : null),
    el("div", { class: "meta" }, meta.join(" · ")),
    el("div", { class: "meta counters" }, counters.join(" · ")),
    tok.pin && tok.pin.default ? el("div", { class: "warning" }, t("default_pin")) : null,
    tok.renewal_problem ? el("div", { class: "warning" }, tok.renewal_problem) : null,
  ];
}

function noTokens(panel) {
  const msg = state.error ? state.error.error : "";
  put(panel, el("div", { class: "card", id: "no-token" }, el("p", { class: "big" }, t("no_token")), msg ? el("p", { class: "detail" }, msg) : null));
}

function renderCerts() {
  const panel = clear(document.getElementById("panel-certs"));
  const list = tokens();
  if (!list.length) return noTokens(panel);
  const w = window_days();
  for (const tok of list) {
    if (tok.error !== undefined && tok.slots === undefined) {
      put(panel, el("div", { class: "card token failed", "data-reader": tok.reader }, el("h2", {}, tok.reader), el("p", { class: "error" }, t("token_failed", { e: tok.error }))));
      continue;
    }
    const rows = tok.slots.map((s) => {
      const c = s.certificate;
      return el("tr", { "data-slot": s.slot, class: "slot" },
        el("td", {}, s.slot.toUpperCase()),
        el("td", {}, s.renewal_of ? t("renewed_pair", { role: role(s.renewal_of.slot), t: s.renewal_of.slot.toUpperCase() }) : role(s.slot)),
        el("td", {}, c ? c.subject : (s.key ? t("no_cert_key") : "—"), s.staged_for ? el("div", { class: "detail" }, t("staged_for", { t: s.staged_for.toUpperCase() })) : null),
        el("td", {}, c ? c.issuer : ""),
        el("td", { class: "num" }, c ? when(c.not_before) : ""),
        el("td", { class: "num" }, c ? when(c.not_after) : ""),
        el("td", { class: "num days" }, c ? daysText(c.days_left) : ""),
        el("td", { class: "verdict v-" + s.verdict }, verdictText(s, w), s.problem && s.verdict !== "unusable" ? el("div", { class: "detail" }, s.problem) : null));
    });
    put(panel, el("div", { class: "card token", "data-serial": tok.serial ?? "", "data-reader": tok.reader },
      tokenHeader(tok),
      el("table", {},
        el("thead", {}, el("tr", {}, ["col_slot", "col_role", "col_subject", "col_issuer", "col_from", "col_to", "col_days", "col_status"].map((k) => el("th", { text: t(k) })))),
        el("tbody", {}, rows))));
  }
}

// ---- Certificate renewal: the list --------------------------------------

function renderRenewList() {
  const panel = clear(document.getElementById("renew-list"));
  const list = tokens();
  if (!list.length) return noTokens(panel);
  put(panel, el("p", { class: "meta" }, t("renewal_intro", { w: window_days() })));
  const busy = !!(state.flow && state.flow.running);
  for (const tok of list) {
    if (!tok.slots) continue;
    const who = { reader: tok.reader, serial: tok.serial ?? null };
    const rows = [];
    for (const s of tok.slots) {
      if (!["9a", "9c", "9d", "9e"].includes(s.slot) || !s.certificate) continue;
      // A renewed pair left in a retired slot (a key without MOVE KEY)
      // holds this slot's role: it is the one to renew.
      const live = s.superseded_by ? tok.slots.find((x) => x.slot === s.superseded_by.slot) : null;
      const cur = live && live.certificate ? live : s;
      const c = cur.certificate;
      const base = { ...who, slot: s.slot, tok };
      const actions = [];
      let note = null;
      if (s.renewal) {
        const r = s.renewal;
        if (r.next && r.next.startsWith("a cancel of this renewal did not finish")) {
          note = t("ph_cancelling");
          actions.push(["cancel", t("cancel_renewal")]);
        } else if (r.phase === "awaiting-certificate") {
          note = t("ph_awaiting", { date: when(r.staged_since), r: r.staged_slot.toUpperCase() });
          actions.push(["install", t("install"), true], ["show-request", t("show_request")], ["cancel", t("cancel_renewal")]);
        } else if (r.phase === "key-pending") {
          note = t("ph_key_pending");
          actions.push(["apply", t("apply"), true], ["cancel", t("cancel_renewal")]);
        } else if (r.phase === "key-missing") {
          note = t("ph_missing");
          actions.push(["cancel", t("cancel_renewal")]);
        } else {
          note = t("ph_interrupted");
          actions.push(["finish", t("finish"), true]);
        }
      } else if (cur.verdict === "renewable") {
        actions.push(["apply", t("apply"), true]);
      } else if (cur.verdict === "expired") {
        note = t("expired_short");
      } else if (cur.verdict === "ok") {
        const from = new Date(new Date(c.not_after).getTime() - window_days() * 86400000).toISOString();
        note = t("not_due", { date: day(from) });
      } else {
        note = verdictText(cur, window_days());
      }
      if (cur !== s) note = t("renewed_home", { r: cur.slot.toUpperCase() }) + (note ? " " + note : "");
      rows.push(el("div", { class: "row", "data-slot": s.slot },
        el("div", { class: "what" },
          el("div", {}, el("strong", {}, s.slot.toUpperCase() + " " + role(s.slot)), " — ", c.subject),
          el("div", { class: "meta" }, when(c.not_before) + " – " + when(c.not_after) + " · ", el("span", { class: "v-" + cur.verdict }, verdictText(cur, window_days()))),
          note ? el("div", { class: "phase" }, note) : null),
        el("div", { class: "actions" }, actions.map(([a, label, primary]) =>
          el("button", { type: "button", "data-action": a, class: primary ? "primary" : null, disabled: busy,
            onclick: () => startAction(a, base) }, label)))));
    }
    put(panel, el("div", { class: "card token", "data-serial": tok.serial ?? "", "data-reader": tok.reader },
      tokenHeader(tok), rows.length ? rows : el("p", {}, t("nothing_to_renew"))));
  }
}

// ---- talking to ukey ---------------------------------------------------------

async function post(path, body) {
  let res;
  try {
    res = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": CSRF },
      body: JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch (e) {
    return { ok: false, doc: { error: t("stopped"), kind: "failed" } };
  }
  let doc = null;
  try { doc = await res.json(); } catch (e) { doc = { error: res.status + " " + res.statusText, kind: "failed" }; }
  return { ok: res.ok, doc };
}

function newOp() {
  const b = new Uint8Array(12);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

// ---- the PIN dialog -----------------------------------------------------------

// Ask for the PIN of `tok` for `what`; `wrong`: tries left after a wrong
// PIN. Resolves with the PIN text, or null when cancelled. The PIN is
// taken from the field at once and the field emptied.
function askPin(tok, what, wrong) {
  const dlg = document.getElementById("pin-dialog");
  const input = document.getElementById("pin-input");
  const left = wrong != null ? wrong : (tok.pin ? tok.pin.tries_left : null);
  document.getElementById("pin-title").textContent = t("pin_title", { serial: tok.serial ?? tok.reader });
  document.getElementById("pin-what").textContent = what;
  const tries = document.getElementById("pin-tries");
  tries.textContent = left == null ? t("pin_unknown")
    : tok.pin && tok.pin.tries_total ? t("pin_tries_of", { n: left, t: tok.pin.tries_total }) : t("pin_tries", { n: left });
  const last = document.getElementById("pin-last");
  last.hidden = left !== 1;
  last.textContent = t("pin_last");
  const err = document.getElementById("pin-error");
  err.hidden = wrong == null;
  err.textContent = wrong === 1 ? t("pin_wrong1") : t("pin_wrong", { n: wrong });
  input.value = "";
  return new Promise((resolve) => {
    const form = document.getElementById("pin-form");
    const done = (v) => {
      form.removeEventListener("submit", onSubmit);
      document.getElementById("pin-cancel").removeEventListener("click", onCancel);
      dlg.removeEventListener("cancel", onCancel);
      input.value = "";
      if (dlg.open) dlg.close();
      resolve(v);
    };
    const onSubmit = (e) => {
      e.preventDefault();
      const v = input.value;
      if ([...v].length < 6 || [...v].length > 8) {
        err.hidden = false;
        err.textContent = t("pin_length");
        return;
      }
      done(v);
    };
    const onCancel = (e) => { e.preventDefault(); done(null); };
    form.addEventListener("submit", onSubmit);
    document.getElementById("pin-cancel").addEventListener("click", onCancel);
    dlg.addEventListener("cancel", onCancel);
    dlg.showModal();
    input.focus();
  });
}

// Run a PIN operation: ask, send once, ask again on a wrong PIN (with the
// tries left the key reported). Resolves with the server's answer, or null.
async function withPin(flow, what, path, body, view) {
  let wrong = null;
  for (;;) {
    const pin = await askPin(flow.tok, what, wrong);
    if (pin === null) return null;
    flow.op = newOp();
    flow.view = view;
    flow.running = true;
    flow.notes = [];
    flow.steps = [];
    renderFlow();
    renderRenewList();
    const r = await post(path, { ...body, reader: flow.reader, serial: flow.serial, pin, op: flow.op });
    flow.running = false;
    if (!r.ok && r.doc.kind === "pin_incorrect" && r.doc.tries_left != null) {
      wrong = r.doc.tries_left;
      continue;
    }
    return r;
  }
}

// ---- Certificate renewal: the flows ----------------------------------------------

function flowTitle(f) {
  return { serial: f.tok.serial ?? f.reader, slot: f.slot.toUpperCase(), role: role(f.slot) };
}

async function startAction(action, base) {
  if (state.flow && state.flow.running) return;
  const f = { action, reader: base.reader, serial: base.serial, slot: base.slot, tok: base.tok, view: null, notes: [], steps: [] };
  state.flow = f;
  if (action === "apply" || action === "show-request") {
    renderAll();
    const what = action === "apply" ? t("pin_for_apply", flowTitle(f)) : t("pin_for_request", flowTitle(f));
    let r = await withPin(f, what, "/api/request", { slot: f.slot }, "working");
    // A key without MOVE KEY: nothing was sent to it; ask, then apply with
    // the user's consent (the PIN is asked again: it was never used).
    if (r && !r.ok && r.doc.kind === "retired_slot_not_confirmed") {
      if (!window.confirm(t("retired_confirm", flowTitle(f)))) return closeFlow();
      r = await withPin(f, what, "/api/request", { slot: f.slot, retired_slot_ok: true }, "working");
    }
    if (r === null) return closeFlow();
    if (r.ok) { f.view = "request"; f.result = r.doc; } else { f.view = "error"; f.result = r.doc; }
    renderAll();
  } else if (action === "install" || action === "finish") {
    f.view = "pick";
    renderAll();
  } else if (action === "cancel") {
    if (!window.confirm(t("cancel_confirm", flowTitle(f)))) return closeFlow();
    const r = await withPin(f, t("pin_for_cancel", flowTitle(f)), "/api/cancel", { slot: f.slot }, "working");
    if (r === null) return closeFlow();
    f.view = r.ok ? "cancelled" : "error";
    f.result = r.doc;
    renderAll();
  }
}

function closeFlow() {
  state.flow = null;
  renderAll();
}

function hex(buf) {
  const b = new Uint8Array(buf);
  let s = "";
  for (let i = 0; i < b.length; i++) s += b[i].toString(16).padStart(2, "0");
  return s;
}

async function takeFile(file) {
  const f = state.flow;
  if (!f || !file) return;
  f.fileName = file.name;
  f.certHex = hex(await file.arrayBuffer());
  f.view = "checking";
  renderFlow();
  const r = await post("/api/preview", { reader: f.reader, serial: f.serial, file_name: f.fileName, cert_hex: f.certHex });
  if (state.flow !== f) return;
  f.view = r.ok ? "preview" : "error";
  f.result = r.doc;
  f.preview = r.ok ? r.doc : null;
  renderAll();
}

async function doInstall() {
  const f = state.flow;
  const p = f.preview;
  const issuerOk = !p.issuer_changed_from || document.getElementById("accept-issuer").checked;
  const notYetOk = !p.not_yet_valid || document.getElementById("accept-not-yet").checked;
  if (!issuerOk || !notYetOk) return;
  const r = await withPin(f, t("pin_for_install", flowTitle(f)), "/api/install", {
    file_name: f.fileName, cert_hex: f.certHex,
    new_issuer_ok: !!p.issuer_changed_from, not_before_ok: !!p.not_yet_valid,
  }, "installing");
  if (r === null) { f.view = "preview"; renderAll(); return; }
  f.view = r.ok ? "installed" : "error";
  f.result = r.doc;
  renderAll();
}

function errorText(doc) {
  switch (doc.kind) {
    case "busy": return t("e_busy");
    case "token_removed": case "interrupted": return t("e_token_removed");
    case "pin_locked": return t("e_pin_locked");
    case "not_staged": return t("e_not_staged");
    case "certificate_refused": case "bad_input":
      return doc.reason ? t("e_refused") + " " + t("r_" + doc.reason) : t("e_refused");
    default: return null;
  }
}

function stepList(p, done) {
  const names = ["certificate_into_staged_slot", "claim_renewal", "certificate_into_target_slot", "delete_old_key", "move_key", "clear_staged_slot", "clear_marker"];
  const vars = { t: (p.target || "").toUpperCase(), r: (p.staged_slot || "").toUpperCase() };
  return el("ul", { class: "steps" }, names.map((n) => el("li", { "data-step": n.replaceAll("_", "-"), class: done.includes(n.replaceAll("_", "-")) ? "done" : null }, t("st_" + n, vars))));
}

function renderFlow() {
  const box = document.getElementById("flow");
  const f = state.flow;
  // The loud banner stands while an install writes to the key.
  document.getElementById("banner").hidden = !(f && f.view === "installing" && f.running);
  if (!f) { box.hidden = true; clear(box); return; }
  box.hidden = false;
  box.className = "card flow";
  box.dataset.view = f.view;
  clear(box);
  const v = flowTitle(f);
  const closeBtn = () => el("div", { class: "actions" }, el("button", { type: "button", id: "flow-close", onclick: closeFlow }, t("close")));
  const notes = () => f.notes.length ? el("ul", { class: "notes" }, f.notes.map((n) => el("li", {}, n))) : null;
  switch (f.view) {
    case "working":
      put(box, el("h2", {}, keyName(f.tok) + " · " + v.slot),
        el("p", { class: "big" }, el("span", { class: "spinner" }), f.slow ? t("generating", v) : t("working", v)),
        f.slow ? el("p", { class: "detail", id: "elapsed" }) : null, notes());
      break;
    case "request": {
      const d = f.result;
      const blob = URL.createObjectURL(new Blob([d.csr_pem], { type: "application/pkcs10" }));
      put(box, el("h2", {}, t("request_title", v)),
        el("p", {}, t("request_done", { r: d.staged_slot.toUpperCase() })),
        el("p", { class: "warning" }, t("request_send", { subject: d.subject })),
        el("textarea", { id: "csr", readonly: true, spellcheck: "false" }, d.csr_pem),
        el("div", { class: "actions" },
          el("a", { href: blob, download: "req.pem", id: "csr-download" }, el("button", { type: "button", class: "primary" }, t("download"))),
          el("button", { type: "button", id: "csr-copy", onclick: (e) => copy(d.csr_pem, e.target) }, t("copy")),
          el("button", { type: "button", id: "flow-close", onclick: closeFlow }, t("close"))));
      break;
    }
    case "pick": {
      const input = el("input", { type: "file", id: "cert-file", accept: ".pem,.crt,.cer,.der,.p7b,.p7c", onchange: (e) => takeFile(e.target.files[0]) });
      const drop = el("div", { class: "drop", id: "drop",
        ondragover: (e) => { e.preventDefault(); drop.classList.add("over"); },
        ondragleave: () => drop.classList.remove("over"),
        ondrop: (e) => { e.preventDefault(); drop.classList.remove("over"); takeFile(e.dataTransfer.files[0]); } },
        el("p", {}, f.action === "finish" ? t("pick_again") : t("pick")), input);
      put(box, el("h2", {}, t(f.action === "finish" ? "finish_title" : "install_title", v)),
        f.action === "finish" ? el("p", {}, t("ph_interrupted")) : null, drop, closeBtn());
      break;
    }
    case "checking":
      put(box, el("h2", {}, t("install_title", v)), el("p", {}, el("span", { class: "spinner" }), t("checking")));
      break;
    case "preview": {
      const p = f.preview;
      if (p.installed_in) {
        put(box, el("h2", {}, t("install_title", v)), el("p", { class: "big" }, t("already", { slot: p.installed_in.toUpperCase() })), closeBtn());
        break;
      }
      const vv = { ...v, slot: p.target.toUpperCase() };
      put(box, el("h2", {}, t(p.finishing || f.action === "finish" ? "finish_title" : "install_title", vv)),
        el("h3", {}, t("preview_title")),
        el("p", { class: "big" }, t("cert_for", { subject: p.subject })),
        el("p", {}, t("cert_issuer", { issuer: p.issuer }), el("br"), t("cert_validity", { from: when(p.not_before), to: when(p.not_after), days: daysText(p.days_left) })),
        p.requested_subject && p.requested_subject !== p.subject ? el("p", { class: "warning" }, t("subject_changed", { w: p.requested_subject + " → " + p.subject })) : null,
        el("h3", {}, t("checks_title")),
        el("ul", { class: "checks", id: "checks" }, p.checks_passed.map((c) => el("li", { "data-check": c }, t("chk_" + c)))),
        p.issuer_changed_from ? el("div", { class: "warning" }, t("issuer_changed", { old: p.issuer_changed_from, new: p.issuer }),
          el("label", {}, el("input", { type: "checkbox", id: "accept-issuer" }), " ", t("accept_issuer"))) : null,
        p.not_yet_valid ? el("div", { class: "warning" }, t("not_yet_valid", { date: when(p.not_before) }),
          el("label", {}, el("input", { type: "checkbox", id: "accept-not-yet" }), " ", t("accept_not_yet"))) : null,
        el("h3", {}, t("steps_title")), stepList(p, []),
        el("div", { class: "actions" },
          el("button", { type: "button", class: "primary", id: "do-install", onclick: doInstall }, t(p.finishing || f.action === "finish" ? "do_finish" : "do_install")),
          el("button", { type: "button", id: "flow-close", onclick: closeFlow }, t("cancel"))));
      break;
    }
    case "installing":
      put(box, el("h2", {}, t("installing", v)),
        el("div", { class: "loud", id: "install-banner" }, t("banner_title") + " " + t("banner_text")),
        stepList(f.preview, f.steps), notes());
      break;
    case "installed": {
      const d = f.result;
      const slot = (d.status && d.status.slots || []).find((s) => s.slot === d.installed_in);
      const c = slot && slot.certificate;
      const text = d.held_until ? t("held_text", { date: when(d.held_until) })
        : d.promoted ? t("installed_text", { slot: d.installed_in.toUpperCase() })
        : t("installed_retired", { home: d.installed_in.toUpperCase() });
      put(box, el("h2", {}, t("installed_title", { ...v, slot: d.target.toUpperCase() })),
        el("p", { class: "big good" }, text),
        el("p", { class: "big", id: "new-validity" }, t("new_validity", {
          from: c ? when(c.not_before) : "", to: when(c ? c.not_after : d.not_after), days: daysText(d.days_left) })),
        f.steps.length ? el("ul", { class: "steps" }, f.steps.map((n) => el("li", { class: "done", "data-step": n }, t("st_" + n.replaceAll("-", "_"), { t: d.target.toUpperCase(), r: (d.staged_slot || "").toUpperCase() })))) : null,
        closeBtn());
      break;
    }
    case "cancelled":
      put(box, el("h2", {}, keyName(f.tok) + " · " + v.slot), el("p", { class: "big" }, t("cancelled", v)), closeBtn());
      break;
    case "error": {
      const d = f.result || {};
      const mine = errorText(d);
      put(box, el("h2", { class: "error" }, t("failed") + ": " + keyName(f.tok) + " · " + v.slot),
        el("p", { class: "big error", id: "flow-error" }, mine || d.error),
        mine ? el("p", { class: "detail" }, d.error) : null, notes(), closeBtn());
      break;
    }
  }
}

function onOp(e) {
  const f = state.flow;
  if (!f || e.op !== f.op) return;
  if (e.type === "slow") {
    f.slow = Date.now();
    tickElapsed();
  } else if (e.type === "slow_done") {
    f.slow = null;
  } else if (e.type === "step") {
    f.steps.push(e.name);
  } else if (e.text) {
    f.notes.push(e.text);
  }
  renderFlow();
}

function tickElapsed() {
  const f = state.flow;
  if (!f || !f.slow) return;
  const e = document.getElementById("elapsed");
  if (e) e.textContent = Math.round((Date.now() - f.slow) / 1000) + " s";
  setTimeout(tickElapsed, 500);
}

async function copy(text, button) {
  try {
    await navigator.clipboard.writeText(text);
    if (button) button.textContent = t("copied");
  } catch (e) {
    const ta = document.getElementById("csr") || document.getElementById("report");
    if (ta) { ta.focus(); ta.select(); }
  }
}

// ---- Driver and diagnostics ------------------------------------------------------

async function loadDiagnostics() {
  try {
    const res = await fetch("/api/diagnostics", { cache: "no-store", credentials: "same-origin" });
    state.diag = await res.json();
  } catch (e) {
    state.diag = { error: t("stopped") };
  }
  render();
}

async function register(path, button) {
  button.disabled = true;
  const r = await post("/api/nss/register", { path });
  if (!r.ok) state.diagError = r.doc.error;
  await loadDiagnostics();
}

async function loadReport() {
  const res = await fetch("/api/report", { cache: "no-store", credentials: "same-origin" });
  state.report = await res.text();
  render();
  copy(state.report, document.getElementById("report-copy"));
}

function renderDiag() {
  const panel = clear(document.getElementById("panel-diag"));
  const d = state.diag;
  put(panel, el("div", { class: "actions" }, el("button", { type: "button", id: "diag-refresh", onclick: () => { state.diag = null; loadDiagnostics(); } }, t("diag_refresh"))));
  if (!d) { put(panel, el("p", {}, el("span", { class: "spinner" }))); return; }
  if (d.error) { put(panel, el("p", { class: "error" }, d.error)); return; }
  const readers = (d.readers && d.readers.readers) || [];
  put(panel, el("div", { class: "card", id: "diag-readers" }, el("h2", {}, t("diag_readers")),
    readers.length ? el("table", {}, el("thead", {}, el("tr", {}, ["col_reader", "col_card", "col_fw", "col_serial"].map((k) => el("th", { text: t(k) })))),
      el("tbody", {}, readers.map((r) => el("tr", {}, el("td", {}, r.name, r.source === "sim" ? el("span", { class: "tag", text: t("simulated") }) : null),
        el("td", {}, r.card_present ? t("card_in") : t("card_out"), r.atr ? el("div", { class: "detail" }, "ATR " + r.atr) : null),
        el("td", {}, r.version || (r.error ? el("span", { class: "error" }, r.error) : "")), el("td", {}, r.serial ?? "")))))
      : el("p", {}, t("diag_none"), d.readers_error ? el("div", { class: "detail" }, d.readers_error.error) : null)));
  const pc = d.pcsc;
  const pcText = pc.state === "running" ? t("pcsc_running") : pc.state === "skipped" ? t("pcsc_skipped") : t("pcsc_not_running");
  put(panel, el("div", { class: "card", id: "diag-system" },
    el("dl", { class: "kv" },
      el("dt", {}, t("diag_pcscd")), el("dd", { id: "diag-pcscd", class: pc.state === "running" ? "good" : pc.state === "skipped" ? null : "bad" }, pcText, pc.message && pc.state !== "skipped" ? el("div", { class: "detail" }, pc.message) : null),
      el("dt", {}, t("diag_module")), el("dd", { id: "diag-module", class: d.module.path ? null : "bad" }, d.module.path || d.module.error),
      el("dt", {}, t("diag_p11kit")), el("dd", { id: "diag-p11kit" }, !d.p11kit.installed ? t("p11kit_missing") : d.p11kit.files.length ? t("p11kit_yes", { files: d.p11kit.files.join(", ") }) : t("p11kit_no")),
      d.simulated.length ? el("dt", {}, t("diag_sim")) : null, d.simulated.length ? el("dd", {}, d.simulated.join(", ")) : null)));
  put(panel, el("div", { class: "card", id: "diag-nss" }, el("h2", {}, t("diag_nss")),
    state.diagError ? el("p", { class: "error" }, state.diagError) : null,
    d.nss.length ? d.nss.map((db) => el("div", { class: "row nss", "data-path": db.path },
      el("div", { class: "what" }, el("strong", {}, db.kind === "firefox" ? t("nss_firefox") : t("nss_chromium")), el("div", { class: "detail" }, db.path),
        el("div", { class: db.registered ? "good" : null, "data-registered": db.registered ? "yes" : "no" }, db.registered ? t("nss_registered") + (db.library ? " (" + db.library + ")" : "") : db.in_use ? t("nss_in_use") : t("nss_not"))),
      db.registered ? null : el("div", { class: "actions" }, el("button", { type: "button", class: "primary", "data-action": "register", disabled: db.in_use || !d.module.path,
        onclick: (e) => register(db.path, e.target) }, t("register")))))
      : el("p", {}, t("nss_none")),
    d.firefox_policies.length ? el("p", { class: "detail" }, d.firefox_policies.join(", ")) : null));
  put(panel, el("div", { class: "card", id: "diag-report" }, el("h2", {}, t("diag_report")), el("p", { class: "detail" }, t("report_note")),
    el("div", { class: "actions" }, el("button", { type: "button", id: "report-copy", onclick: loadReport }, t("report_copy"))),
    state.report ? el("textarea", { id: "report", readonly: true, spellcheck: "false" }, state.report) : null));
}

// ---- everything --------------------------------------------------------------

// The tab's content from the state. The renewal in progress (its box)
// is drawn only when it changes, so a token event never resets what the
// user is doing there (a chosen file, a ticked box).
function render() {
  if (state.tab === "certs") renderCerts();
  if (state.tab === "renew") renderRenewList();
  if (state.tab === "diag") renderDiag();
}

function renderAll() {
  renderFlow();
  render();
}

function connect() {
  const es = new EventSource("/api/events");
  es.addEventListener("open", () => setLive(true));
  es.addEventListener("error", () => setLive(false));
  es.addEventListener("status", (m) => {
    if (m.data === state.lastStatus) return;
    state.lastStatus = m.data;
    const doc = JSON.parse(m.data);
    state.status = doc.status;
    state.error = doc.error;
    // Failed tokens come as {reader, error}.
    if (state.flow && !state.flow.running) {
      const tok = findToken(state.flow.reader, state.flow.serial);
      if (tok) state.flow.tok = tok;
    }
    render();
  });
  es.addEventListener("op", (m) => onOp(JSON.parse(m.data)));
}

document.addEventListener("DOMContentLoaded", () => {
  for (const b of document.querySelectorAll("nav button")) b.addEventListener("click", () => showTab(b.dataset.tab));
  document.getElementById("lang").addEventListener("click", () => {
    lang = lang === "zh" ? "en" : "zh";
    localStorage.setItem("ukey-lang", lang);
    applyWords();
    renderAll();
  });
  applyWords();
  showTab("certs");
  connect();
});

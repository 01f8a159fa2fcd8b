"""Drives the web playground in headless Chromium (Debian's chromium + chromium-driver, Selenium from the tools venv),
offline, against a running `kinema serve`. Run by Tests/EndToEndTests/PlaygroundTests.swift, which starts the server,
makes the images and asks the server for the messages to expect.

Prints one JSON object on its last line ({"task_id", "progress_seen", "video_duration", ...}); exits non-zero with the
reason on any failed check.
"""

import argparse
import json
import sys
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys


class CheckFailed(Exception):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def wait_for(description: str, probe, timeout: float):
    """Polls `probe` until it returns something truthy; fails with `description` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.05)
    raise CheckFailed(
        f"timed out after {timeout:.0f} s waiting for {description} (last: {last!r})"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--image", required=True, help="a valid first frame")
    parser.add_argument(
        "--small-image", required=True, help="an image under the minimum size"
    )
    parser.add_argument(
        "--small-image-message", required=True, help="what the server says about it"
    )
    parser.add_argument("--duration", type=int, required=True)
    parser.add_argument("--screenshot", required=True)
    parser.add_argument("--timeout", type=float, default=180)
    args = parser.parse_args()

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in [
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1400,1100",
        "--mute-audio",
    ]:
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    report: dict = {}
    try:
        driver.get(args.url + "/")
        check(driver.title == "Kinema playground", f"title {driver.title!r}")

        def by_id(name: str):
            return driver.find_element(By.ID, name)

        # The key: kept in the tab's session storage, never in the URL.
        by_id("api-key").send_keys(args.key, Keys.TAB)
        stored = driver.execute_script("return sessionStorage.getItem('kinema.apiKey')")
        check(stored == args.key, f"session storage holds {stored!r}")
        check(args.key not in driver.current_url, "the key is in the URL")

        # An image below the contract's minimum: the server's own message, next to the image field, before any upload.
        by_id("image").send_keys(args.small_image)
        message = wait_for(
            "the small image's error", lambda: by_id("error-image").text, 20
        )
        check(
            message == args.small_image_message,
            f"image error {message!r}, expected {args.small_image_message!r}",
        )

        by_id("image").send_keys(args.image)
        wait_for(
            "the preview",
            lambda: (
                by_id("image-preview").is_displayed() and not by_id("error-image").text
            ),
            20,
        )
        report["image_info"] = by_id("image-info").text

        # The shot editor: durations are summed against the cap, and shots exclude the last frame.
        by_id("multi-shot").click()
        check(by_id("shot-editor").is_displayed(), "the shot editor did not open")
        by_id("add-shot").click()
        by_id("add-shot").click()
        durations = driver.find_elements(By.CSS_SELECTOR, "#shots .shot-duration")
        check(len(durations) == 4, f"{len(durations)} shots after adding two to two")
        total = by_id("shot-total")
        check(
            "of at most 15 s" in total.text and "error" in total.get_attribute("class"),
            f"over the cap: {total.text!r}",
        )
        driver.find_elements(By.CSS_SELECTOR, "#shots button")[0].click()
        check(
            len(driver.find_elements(By.CSS_SELECTOR, "#shots .shot-duration")) == 3,
            "a shot was not removed",
        )
        check(
            by_id("end-image").get_attribute("disabled") is not None,
            "the last frame stays choosable with shots",
        )
        by_id("multi-shot").click()
        check(by_id("prompt").is_displayed(), "the single prompt did not come back")

        # The fields.
        by_id("prompt").send_keys("slow push in on the subject, golden light")
        by_id("negative-prompt").send_keys("blur")
        duration = by_id("duration")
        duration.clear()
        duration.send_keys(str(args.duration))
        driver.execute_script(
            "const s = document.getElementById('cfg-scale'); s.value = '0.7'; s.dispatchEvent(new Event('input'));"
        )
        check(
            by_id("cfg-scale-value").text == "0.70",
            f"slider shows {by_id('cfg-scale-value').text!r}",
        )
        by_id("sound").click()

        # A value only the server checks: its error lands next to the field named in metadata.field.
        by_id("seed").send_keys("99999999999")
        by_id("submit").click()
        seed_error = wait_for(
            "the server's seed error", lambda: by_id("error-seed").text, 30
        )
        check("seed" in seed_error, f"seed error {seed_error!r}")
        report["seed_error"] = seed_error
        by_id("seed").clear()
        by_id("seed").send_keys("42")

        by_id("submit").click()
        task_line = wait_for(
            "a task id",
            lambda: (
                by_id("task-line").text.startswith("Task ") and by_id("task-line").text
            ),
            30,
        )
        task_id = task_line.removeprefix("Task ").strip()
        report["task_id"] = task_id

        seen: list[int] = []
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            value = int(by_id("progress").get_attribute("aria-valuenow"))
            if not seen or seen[-1] != value:
                seen.append(value)
            if value == 100 or by_id("task-error").text:
                break
            time.sleep(0.05)
        report["progress_seen"] = seen
        check(
            not by_id("task-error").text, f"the task failed: {by_id('task-error').text}"
        )
        check(seen and seen[-1] == 100, f"progress never reached 100: {seen}")
        check(seen == sorted(seen), f"progress went backwards: {seen}")
        check(
            "done" in by_id("progress").get_attribute("class"),
            "the bar is not marked done",
        )

        # The video plays in the page: its metadata loads, with the requested length.
        video = by_id("video")
        wait_for(
            "the video's metadata",
            lambda: driver.execute_script("return arguments[0].readyState", video) >= 1,
            30,
        )
        video_duration = driver.execute_script("return arguments[0].duration", video)
        report["video_duration"] = video_duration
        check(
            abs(video_duration - args.duration) < 0.1,
            f"video lasts {video_duration} s, expected {args.duration}",
        )
        check(
            driver.execute_script("return arguments[0].error", video) is None,
            "the video element reports an error",
        )
        download = by_id("download")
        check(
            download.is_displayed()
            and download.get_attribute("href") == video.get_attribute("src"),
            "no download link",
        )
        report["video_url"] = video.get_attribute("src")

        # This key's tasks: the new one is listed, succeeded.
        row = wait_for(
            "the task in the list",
            lambda: next(
                iter(
                    driver.find_elements(
                        By.CSS_SELECTOR, f'#task-rows tr[data-task-id="{task_id}"]'
                    )
                ),
                None,
            ),
            20,
        )
        wait_for("the listed status", lambda: "succeed" in row.text, 20)

        # A frame of the clip in the screenshot, not a spinner: play it for a moment, then pause.
        driver.execute_script("arguments[0].muted = true; arguments[0].play();", video)
        wait_for(
            "playback",
            lambda: (
                driver.execute_script("return arguments[0].currentTime", video) >= 1.0
            ),
            30,
        )
        driver.execute_script("arguments[0].pause();", video)
        wait_for(
            "the paused frame",
            lambda: driver.execute_script(
                "return arguments[0].paused && arguments[0].readyState >= 2", video
            ),
            20,
        )
        time.sleep(0.5)
        Path(args.screenshot).parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(args.screenshot)

        # No console errors, except the one network error the deliberate 400 above causes.
        errors = [
            entry["message"]
            for entry in driver.get_log("browser")
            if entry["level"] == "SEVERE"
        ]
        unexpected = [
            m
            for m in errors
            if not ("kling-v3.0-std-i2v" in m and "status of 400" in m)
        ]
        check(
            len(errors) - len(unexpected) == 1,
            f"expected one logged 400 for the seed, got {errors}",
        )
        check(not unexpected, f"console errors: {unexpected}")
        print(json.dumps(report))
        return 0
    except CheckFailed as failure:
        try:
            driver.save_screenshot(args.screenshot)
            report["browser_log"] = driver.get_log("browser")
        except Exception as error:  # noqa: BLE001 - the report is best effort once a check failed
            print(f"(no screenshot or browser log: {error})", file=sys.stderr)
        print(json.dumps(report), file=sys.stderr)
        print(f"playground check failed: {failure}", file=sys.stderr)
        return 1
    finally:
        driver.quit()


if __name__ == "__main__":
    sys.exit(main())

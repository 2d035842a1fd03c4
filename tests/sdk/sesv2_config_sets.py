"""Drives mailpush's SES v2 configuration sets with boto3's `sesv2` client, changing nothing but endpoint_url.

Usage: sesv2_config_sets.py create | sets | contacts | after_unsubscribe | events. Environment: MAILPUSH_ENDPOINT
(host:port), SECRET_ID, SECRET_KEY, TO, HOOK (the test's event receiver). `create` creates the domain identity
shop.example.com; `sets` (after its records are published) drives the configuration set and event destination
operations and sends with a set and tags; `contacts` and `after_unsubscribe` the contact lists; `events` the set
options, the SES-only events (SEND, REJECT, RENDERING_FAILURE) and Raw mail with a set and list management.
Prints what it saw as JSON.
"""
import json
import os
import sys

import boto3
from botocore.exceptions import ClientError


def client():
    return boto3.client(
        "sesv2",
        region_name="eu-central-1",
        endpoint_url="http://" + os.environ["MAILPUSH_ENDPOINT"],
        aws_access_key_id=os.environ["SECRET_ID"],
        aws_secret_access_key=os.environ["SECRET_KEY"],
    )


def error_of(fn, **kwargs):
    try:
        fn(**kwargs)
        return None
    except ClientError as e:
        return [e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]]


ses = client()
TO = os.environ["TO"]
HOOK = os.environ.get("HOOK", "")
out = {}

if sys.argv[1] == "create":
    ses.create_email_identity(EmailIdentity="shop.example.com")
    json.dump(out, sys.stdout)
    sys.exit(0)

out["verified"] = ses.get_email_identity(EmailIdentity="shop.example.com")["VerifiedForSendingStatus"]


def text_mail(to, subject, **kwargs):
    return ses.send_email(
        FromEmailAddress="noreply@shop.example.com",
        Destination={"ToAddresses": [to]},
        Content={"Simple": {"Subject": {"Data": subject}, "Body": {"Text": {"Data": "News of the week."}}}},
        **kwargs)["MessageId"]


if sys.argv[1] == "contacts":
    ses.create_contact_list(ContactListName="news", Description="Newsletter", Topics=[
        {"TopicName": "weekly", "DisplayName": "Weekly", "Description": "Every week",
         "DefaultSubscriptionStatus": "OPT_IN"},
        {"TopicName": "offers", "DisplayName": "Offers", "DefaultSubscriptionStatus": "OPT_OUT"},
    ])
    out["list_again"] = error_of(ses.create_contact_list, ContactListName="news")
    out["bad_default"] = error_of(ses.create_contact_list, ContactListName="bad", Topics=[
        {"TopicName": "t", "DisplayName": "T", "DefaultSubscriptionStatus": "MAYBE"}])
    r = ses.get_contact_list(ContactListName="news")
    out["topics"] = [[t["TopicName"], t["DefaultSubscriptionStatus"]] for t in r["Topics"]]
    out["description"] = r["Description"]
    out["lists"] = [l["ContactListName"] for l in ses.list_contact_lists()["ContactLists"]]
    out["unknown_list"] = error_of(ses.get_contact_list, ContactListName="nope")
    ses.create_contact(ContactListName="news", EmailAddress=TO)
    ses.create_contact(ContactListName="news", EmailAddress="alice@example.org",
                       TopicPreferences=[{"TopicName": "weekly", "SubscriptionStatus": "OPT_OUT"}])
    out["contact_again"] = error_of(ses.create_contact, ContactListName="news", EmailAddress=TO)
    out["contact_bad_topic"] = error_of(
        ses.create_contact, ContactListName="news", EmailAddress="bob@example.org",
        TopicPreferences=[{"TopicName": "nope", "SubscriptionStatus": "OPT_IN"}])
    r = ses.get_contact(ContactListName="news", EmailAddress="alice@example.org")
    out["alice"] = [r["TopicPreferences"], r["TopicDefaultPreferences"], r["UnsubscribeAll"]]
    r = ses.list_contacts(ContactListName="news", Filter={
        "FilteredStatus": "OPT_OUT", "TopicFilter": {"TopicName": "weekly"}})
    out["weekly_out"] = [c["EmailAddress"] for c in r["Contacts"]]
    r = ses.list_contacts(ContactListName="news")
    out["contacts"] = [c["EmailAddress"] for c in r["Contacts"]]
    ses.update_contact(ContactListName="news", EmailAddress="alice@example.org", UnsubscribeAll=True)
    out["alice_all"] = ses.get_contact(ContactListName="news", EmailAddress="alice@example.org")["UnsubscribeAll"]
    out["update_missing"] = error_of(ses.update_contact, ContactListName="news", EmailAddress="ghost@example.org")
    weekly = {"ContactListName": "news", "TopicName": "weekly"}
    out["weekly_1"] = text_mail(TO, "Weekly 1", ListManagementOptions=weekly)
    out["alice_weekly"] = text_mail("alice@example.org", "Weekly to Alice", ListManagementOptions=weekly)
    out["offers_1"] = text_mail(TO, "Offers 1", ListManagementOptions={"ContactListName": "news", "TopicName": "offers"})
    out["send_unknown_list"] = error_of(text_mail, to=TO, subject="x", ListManagementOptions={"ContactListName": "nope"})
    out["send_unknown_topic"] = error_of(
        text_mail, to=TO, subject="x", ListManagementOptions={"ContactListName": "news", "TopicName": "nope"})
    json.dump(out, sys.stdout)
    sys.exit(0)

if sys.argv[1] == "after_unsubscribe":
    r = ses.get_contact(ContactListName="news", EmailAddress=TO)
    out["preferences"] = r["TopicPreferences"]
    out["weekly_2"] = text_mail(TO, "Weekly 2", ListManagementOptions={"ContactListName": "news", "TopicName": "weekly"})
    out["plain"] = text_mail(TO, "Plain after")
    ses.delete_contact(ContactListName="news", EmailAddress="alice@example.org")
    out["deleted_contact"] = error_of(ses.get_contact, ContactListName="news", EmailAddress="alice@example.org")
    ses.delete_contact_list(ContactListName="news")
    out["deleted_list"] = error_of(ses.get_contact_list, ContactListName="news")
    json.dump(out, sys.stdout)
    sys.exit(0)

def raw(subject, to=TO, extra=""):
    return ("From: Shop <noreply@shop.example.com>\r\nTo: %s\r\nSubject: %s\r\n%sMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\nRaw news of the week.\r\n" % (to, subject, extra)).encode()


if sys.argv[1] == "events":
    # The options: kept and answered by GetConfigurationSet; SendingEnabled false refuses sends with the set.
    ses.create_configuration_set(ConfigurationSetName="events", DeliveryOptions={"TlsPolicy": "REQUIRE"},
                                 ReputationOptions={"ReputationMetricsEnabled": True})
    r = ses.get_configuration_set(ConfigurationSetName="events")
    out["created_options"] = [r["DeliveryOptions"]["TlsPolicy"], r["ReputationOptions"]["ReputationMetricsEnabled"],
                              r["SendingOptions"]["SendingEnabled"]]
    ses.put_configuration_set_tracking_options(ConfigurationSetName="events",
                                               CustomRedirectDomain="track.shop.example.com", HttpsPolicy="REQUIRE")
    ses.put_configuration_set_suppression_options(ConfigurationSetName="events", SuppressedReasons=["BOUNCE"])
    ses.put_configuration_set_delivery_options(ConfigurationSetName="events", TlsPolicy="OPTIONAL",
                                               MaxDeliverySeconds=600)
    ses.put_configuration_set_reputation_options(ConfigurationSetName="events", ReputationMetricsEnabled=False)
    r = ses.get_configuration_set(ConfigurationSetName="events")
    out["options"] = [r["TrackingOptions"], r["DeliveryOptions"], r["ReputationOptions"]["ReputationMetricsEnabled"],
                      r["SendingOptions"]["SendingEnabled"], r["SuppressionOptions"]["SuppressedReasons"]]
    out["bad_tls"] = error_of(ses.put_configuration_set_delivery_options, ConfigurationSetName="events",
                              TlsPolicy="SOMETIMES")
    out["options_unknown_set"] = error_of(ses.put_configuration_set_sending_options, ConfigurationSetName="nope",
                                          SendingEnabled=False)
    ses.create_configuration_set(ConfigurationSetName="paused")
    ses.put_configuration_set_sending_options(ConfigurationSetName="paused", SendingEnabled=False)
    out["paused_get"] = ses.get_configuration_set(ConfigurationSetName="paused")["SendingOptions"]["SendingEnabled"]
    out["paused_send"] = error_of(text_mail, to=TO, subject="Paused", ConfigurationSetName="paused")
    out["paused_raw"] = error_of(ses.send_email, Content={"Raw": {"Data": raw("Paused raw")}},
                                 ConfigurationSetName="paused")

    ses.create_configuration_set_event_destination(
        ConfigurationSetName="events", EventDestinationName="hook",
        EventDestination={"Enabled": True, "SnsDestination": {"TopicArn": HOOK},
                          "MatchingEventTypes": ["SEND", "REJECT", "RENDERING_FAILURE", "SUBSCRIPTION", "DELIVERY"]})

    # UpdateContactList, then Raw mail with a set, tags and a contact-list topic.
    ses.create_contact_list(ContactListName="club", Description="Club", Topics=[
        {"TopicName": "deals", "DisplayName": "Deals", "DefaultSubscriptionStatus": "OPT_IN"}])
    ses.update_contact_list(ContactListName="club", Description="Members' club", Topics=[
        {"TopicName": "deals", "DisplayName": "Deals", "DefaultSubscriptionStatus": "OPT_IN"},
        {"TopicName": "meetups", "DisplayName": "Meetups", "Description": "Now and then",
         "DefaultSubscriptionStatus": "OPT_OUT"}])
    r = ses.get_contact_list(ContactListName="club")
    out["updated_list"] = [r["Description"], [[t["TopicName"], t["DefaultSubscriptionStatus"]] for t in r["Topics"]]]
    out["update_unknown_list"] = error_of(ses.update_contact_list, ContactListName="nope", Description="x")
    out["update_bad_topic"] = error_of(ses.update_contact_list, ContactListName="club", Topics=[
        {"TopicName": "t", "DisplayName": "T", "DefaultSubscriptionStatus": "MAYBE"}])
    ses.create_contact(ContactListName="club", EmailAddress="alice@example.org", UnsubscribeAll=True)
    deals = {"ContactListName": "club", "TopicName": "deals"}
    tags = [{"Name": "campaign", "Value": "raw"}]
    out["raw_id"] = ses.send_email(Content={"Raw": {"Data": raw("Raw deals")}}, ConfigurationSetName="events",
                                   EmailTags=tags, ListManagementOptions=deals)["MessageId"]
    out["raw_own_header"] = ses.send_email(
        Content={"Raw": {"Data": raw("Raw own header", extra="List-Unsubscribe: <mailto:leave@shop.example.com>\r\n")}},
        ListManagementOptions=deals)["MessageId"]
    out["raw_alice"] = ses.send_email(Content={"Raw": {"Data": raw("Raw to Alice", to="alice@example.org")}},
                                      ListManagementOptions=deals)["MessageId"]
    out["raw_unknown_list"] = error_of(ses.send_email, Content={"Raw": {"Data": raw("x")}},
                                       ListManagementOptions={"ContactListName": "nope"})
    out["raw_unknown_set"] = error_of(ses.send_email, Content={"Raw": {"Data": raw("x")}}, ConfigurationSetName="nope")

    # RENDERING_FAILURE: the second entry lacks the variable the template needs.
    ses.create_email_template(TemplateName="greet", TemplateContent={
        "Subject": "Hello {{name}}",
        "Text": "Hi {{name}}, thank you for choosing our shop. Your account is ready and waiting for you today.",
        "Html": "<p>Hi {{name}}, thank you for choosing our shop. Your account is ready and waiting for you today.</p>"})
    entries = [
        {"Destination": {"ToAddresses": [TO]},
         "ReplacementEmailContent": {"ReplacementTemplate": {"ReplacementTemplateData": json.dumps({"name": "Di"})}}},
        {"Destination": {"ToAddresses": ["nameless@example.org"]},
         "ReplacementEmailContent": {"ReplacementTemplate": {"ReplacementTemplateData": json.dumps({"city": "Ulm"})}}},
    ]
    r = ses.send_bulk_email(FromEmailAddress="noreply@shop.example.com", ConfigurationSetName="events",
                            DefaultContent={"Template": {"TemplateName": "greet", "TemplateData": json.dumps({"x": 1})}},
                            BulkEmailEntries=entries)
    out["bulk"] = [e["Status"] for e in r["BulkEmailEntryResults"]]
    out["bulk_id"] = r["BulkEmailEntryResults"][0]["MessageId"]
    out["bulk_paused"] = error_of(
        ses.send_bulk_email, FromEmailAddress="noreply@shop.example.com", ConfigurationSetName="paused",
        DefaultContent={"Template": {"TemplateName": "greet", "TemplateData": json.dumps({"name": "x"})}},
        BulkEmailEntries=entries[:1])

    # REJECT: the account's content review refuses the mail.
    out["rejected"] = error_of(
        ses.send_email, FromEmailAddress="noreply@shop.example.com", Destination={"ToAddresses": [TO]},
        ConfigurationSetName="events", EmailTags=tags,
        Content={"Simple": {"Subject": {"Data": "Your order"}, "Body": {"Text": {
            "Data": "Your order has shipped and arrives on Monday.\nP.S. Visit our online casino for a bonus.\n"}}}})
    json.dump(out, sys.stdout)
    sys.exit(0)

ses.create_configuration_set(ConfigurationSetName="marketing")
out["set_again"] = error_of(ses.create_configuration_set, ConfigurationSetName="marketing")
out["bad_name"] = error_of(ses.create_configuration_set, ConfigurationSetName="no spaces")
out["set_name"] = ses.get_configuration_set(ConfigurationSetName="marketing")["ConfigurationSetName"]
out["unknown_set"] = error_of(ses.get_configuration_set, ConfigurationSetName="nope")
ses.create_configuration_set(ConfigurationSetName="temp")
out["sets"] = ses.list_configuration_sets()["ConfigurationSets"]
ses.delete_configuration_set(ConfigurationSetName="temp")
out["deleted_set"] = error_of(ses.get_configuration_set, ConfigurationSetName="temp")
out["delete_again"] = error_of(ses.delete_configuration_set, ConfigurationSetName="temp")


def dest(enabled, types, url):
    return {"Enabled": enabled, "MatchingEventTypes": types, "SnsDestination": {"TopicArn": url}}


ses.create_configuration_set_event_destination(
    ConfigurationSetName="marketing", EventDestinationName="hook",
    EventDestination=dest(True, ["DELIVERY", "BOUNCE"], HOOK))
out["dest_again"] = error_of(
    ses.create_configuration_set_event_destination, ConfigurationSetName="marketing",
    EventDestinationName="hook", EventDestination=dest(True, ["DELIVERY"], HOOK))
out["dest_private"] = error_of(
    ses.create_configuration_set_event_destination, ConfigurationSetName="marketing",
    EventDestinationName="private", EventDestination=dest(True, ["DELIVERY"], "http://10.1.2.3/hook"))
out["dest_arn"] = error_of(
    ses.create_configuration_set_event_destination, ConfigurationSetName="marketing",
    EventDestinationName="arn", EventDestination=dest(True, ["DELIVERY"], "arn:aws:sns:us-east-1:123456789012:t"))
out["dest_bad_type"] = error_of(
    ses.create_configuration_set_event_destination, ConfigurationSetName="marketing",
    EventDestinationName="typo", EventDestination=dest(True, ["DELIVERED"], HOOK))
out["dest_unknown_set"] = error_of(
    ses.create_configuration_set_event_destination, ConfigurationSetName="nope",
    EventDestinationName="hook", EventDestination=dest(True, ["DELIVERY"], HOOK))
ses.create_configuration_set_event_destination(
    ConfigurationSetName="marketing", EventDestinationName="off", EventDestination=dest(True, ["OPEN"], HOOK))
ses.update_configuration_set_event_destination(
    ConfigurationSetName="marketing", EventDestinationName="off",
    EventDestination=dest(False, ["OPEN", "CLICK"], HOOK))
r = ses.get_configuration_set_event_destinations(ConfigurationSetName="marketing")
out["dests"] = [[d["Name"], d["Enabled"], d["MatchingEventTypes"], d["SnsDestination"]["TopicArn"] == HOOK]
                for d in r["EventDestinations"]]
ses.delete_configuration_set_event_destination(ConfigurationSetName="marketing", EventDestinationName="off")
out["delete_dest_again"] = error_of(
    ses.delete_configuration_set_event_destination, ConfigurationSetName="marketing", EventDestinationName="off")
out["update_missing"] = error_of(
    ses.update_configuration_set_event_destination, ConfigurationSetName="marketing",
    EventDestinationName="ghost", EventDestination=dest(True, ["DELIVERY"], HOOK))


def send(to, **kwargs):
    return ses.send_email(
        FromEmailAddress="noreply@shop.example.com",
        Destination={"ToAddresses": [to]},
        Content={"Simple": {"Subject": {"Data": "Spring sale"}, "Body": {"Text": {"Data": "It is spring."}}}},
        **kwargs)


tags = [{"Name": "campaign", "Value": "spring"}, {"Name": "batch", "Value": "b-1"}]
out["delivered_id"] = send(TO, ConfigurationSetName="marketing", EmailTags=tags)["MessageId"]
out["bounced_id"] = send("gone@example.org", ConfigurationSetName="marketing", EmailTags=tags)["MessageId"]
out["send_unknown_set"] = error_of(send, to=TO, ConfigurationSetName="nope")
out["bad_tag"] = error_of(send, to=TO, ConfigurationSetName="marketing", EmailTags=[{"Name": "a b", "Value": "x"}])
json.dump(out, sys.stdout)

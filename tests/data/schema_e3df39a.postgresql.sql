-- pg_dump of a database made by wecom-sentinel e3df39a (make_schema_e3df39a.py)
CREATE TABLE alert (
    alert_id character varying(128) NOT NULL,
    conversation_id character varying NOT NULL,
    kind character varying NOT NULL,
    severity integer NOT NULL,
    words text NOT NULL,
    count integer NOT NULL,
    first_at timestamp with time zone NOT NULL,
    last_at timestamp with time zone NOT NULL,
    latest_text text NOT NULL,
    latest_message_id integer,
    recipients text NOT NULL,
    customer_id character varying NOT NULL,
    customer_name character varying NOT NULL,
    staff_userid character varying NOT NULL,
    status character varying NOT NULL,
    claimed_by character varying NOT NULL,
    closed_by character varying NOT NULL,
    closed_at timestamp with time zone,
    escalated boolean NOT NULL,
    notified_severity integer NOT NULL,
    cards_sent integer NOT NULL,
    rules_version character varying NOT NULL
);

CREATE TABLE alert_audit (
    id integer NOT NULL,
    alert_id character varying(128) NOT NULL,
    "user" character varying NOT NULL,
    action character varying NOT NULL,
    source character varying NOT NULL,
    at timestamp with time zone NOT NULL,
    before character varying NOT NULL,
    after character varying NOT NULL
);

CREATE SEQUENCE alert_audit_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE alert_audit_id_seq OWNED BY alert_audit.id;

CREATE TABLE alert_message (
    alert_id character varying(128) NOT NULL,
    message_id integer NOT NULL
);

CREATE TABLE held_alert (
    id integer NOT NULL,
    recipient character varying NOT NULL,
    alert_id character varying(128) NOT NULL,
    held_at timestamp with time zone NOT NULL,
    digest_id integer NOT NULL
);

CREATE SEQUENCE held_alert_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE held_alert_id_seq OWNED BY held_alert.id;

CREATE TABLE hit (
    id integer NOT NULL,
    message_id integer NOT NULL,
    word character varying NOT NULL,
    rule_group character varying NOT NULL,
    severity integer NOT NULL,
    span_start integer NOT NULL,
    span_end integer NOT NULL,
    rules_version character varying NOT NULL
);

CREATE SEQUENCE hit_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE hit_id_seq OWNED BY hit.id;

CREATE TABLE kf_cursor (
    open_kfid character varying(128) NOT NULL,
    cursor character varying NOT NULL,
    fence integer NOT NULL,
    updated_at timestamp with time zone NOT NULL
);

CREATE TABLE kf_customer (
    open_kfid character varying(128) NOT NULL,
    external_userid character varying(128) NOT NULL,
    last_customer_at integer NOT NULL,
    unanswered integer NOT NULL,
    updated_at timestamp with time zone NOT NULL
);

CREATE TABLE kf_decision (
    dedupe_key character varying(128) NOT NULL,
    open_kfid character varying(128) NOT NULL,
    external_userid character varying(128) NOT NULL,
    outcome character varying NOT NULL,
    decided_at timestamp with time zone NOT NULL
);

CREATE TABLE kf_reply (
    id integer NOT NULL,
    msgid character varying(32) NOT NULL,
    open_kfid character varying(128) NOT NULL,
    external_userid character varying(128) NOT NULL,
    in_reply_to text NOT NULL,
    kind character varying NOT NULL,
    rule character varying NOT NULL,
    msgtype character varying NOT NULL,
    body text NOT NULL,
    window_start integer NOT NULL,
    status character varying NOT NULL,
    error character varying NOT NULL,
    fail_type integer,
    attempts integer NOT NULL,
    created_at timestamp with time zone NOT NULL,
    sent_at timestamp with time zone
);

CREATE SEQUENCE kf_reply_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE kf_reply_id_seq OWNED BY kf_reply.id;

CREATE TABLE message (
    id integer NOT NULL,
    dedupe_key character varying(128) NOT NULL,
    channel character varying NOT NULL,
    msg_type character varying NOT NULL,
    event character varying,
    from_user character varying NOT NULL,
    to_user character varying NOT NULL,
    agent_id character varying,
    create_time integer NOT NULL,
    content text,
    raw text NOT NULL,
    received_at timestamp with time zone NOT NULL,
    rules_version character varying,
    conversation_id character varying,
    direction character varying
);

CREATE TABLE message_flag (
    id integer NOT NULL,
    dedupe_key character varying(128) NOT NULL,
    flag character varying NOT NULL,
    detail character varying NOT NULL,
    source_key character varying(128) NOT NULL,
    created_at timestamp with time zone NOT NULL
);

CREATE SEQUENCE message_flag_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE message_flag_id_seq OWNED BY message_flag.id;

CREATE SEQUENCE message_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE message_id_seq OWNED BY message.id;

CREATE TABLE outbox (
    id integer NOT NULL,
    alert_id character varying(128),
    kind character varying NOT NULL,
    recipients text NOT NULL,
    payload text NOT NULL,
    task_id character varying(128),
    status character varying NOT NULL,
    attempts integer NOT NULL,
    created_at timestamp with time zone NOT NULL,
    next_at timestamp with time zone NOT NULL,
    lease_until timestamp with time zone,
    lease_owner character varying,
    sent_at timestamp with time zone,
    last_error text,
    delivered_to text,
    response_code text,
    response_code_used boolean NOT NULL
);

CREATE SEQUENCE outbox_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE outbox_id_seq OWNED BY outbox.id;

CREATE TABLE recipient_send (
    id integer NOT NULL,
    recipient character varying NOT NULL,
    sent_at timestamp with time zone NOT NULL,
    outbox_id integer NOT NULL
);

CREATE SEQUENCE recipient_send_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE recipient_send_id_seq OWNED BY recipient_send.id;

CREATE TABLE sandbox_call (
    id integer NOT NULL,
    at timestamp with time zone NOT NULL,
    path character varying NOT NULL,
    body text NOT NULL,
    answer text NOT NULL
);

CREATE SEQUENCE sandbox_call_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE sandbox_call_id_seq OWNED BY sandbox_call.id;

ALTER TABLE ONLY alert_audit ALTER COLUMN id SET DEFAULT nextval('alert_audit_id_seq'::regclass);

ALTER TABLE ONLY held_alert ALTER COLUMN id SET DEFAULT nextval('held_alert_id_seq'::regclass);

ALTER TABLE ONLY hit ALTER COLUMN id SET DEFAULT nextval('hit_id_seq'::regclass);

ALTER TABLE ONLY kf_reply ALTER COLUMN id SET DEFAULT nextval('kf_reply_id_seq'::regclass);

ALTER TABLE ONLY message ALTER COLUMN id SET DEFAULT nextval('message_id_seq'::regclass);

ALTER TABLE ONLY message_flag ALTER COLUMN id SET DEFAULT nextval('message_flag_id_seq'::regclass);

ALTER TABLE ONLY outbox ALTER COLUMN id SET DEFAULT nextval('outbox_id_seq'::regclass);

ALTER TABLE ONLY recipient_send ALTER COLUMN id SET DEFAULT nextval('recipient_send_id_seq'::regclass);

ALTER TABLE ONLY sandbox_call ALTER COLUMN id SET DEFAULT nextval('sandbox_call_id_seq'::regclass);

INSERT INTO alert VALUES ('al-0001', 'app:zhangsan', 'customer_risk', 3, '["维权", "12315"]', 2, '2026-03-02 08:30:15.25+00', '2026-03-02 08:31:15.25+00', '我要维权，投诉到12315', 1, '["manager1", "manager2"]', 'zhangsan', '张三', '', 'claimed', 'manager1', '', NULL, true, 3, 1, 'r1');
INSERT INTO alert VALUES ('al-0002', 'kf:wkKF1:wmCUSTOMER', 'staff_conduct', 2, '["红包"]', 1, '2026-03-02 08:31:15.25+00', '2026-03-02 08:31:15.25+00', '加个红包', NULL, '[]', 'wmCUSTOMER', '', 'servicer1', 'resolved', '', 'manager2', '2026-03-02 08:35:15.25+00', false, 2, 0, '');

INSERT INTO alert_audit VALUES (1, 'al-0001', 'manager1', 'claim', 'card', '2026-03-02 08:32:15.25+00', 'open', 'claimed');

INSERT INTO alert_message VALUES ('al-0001', 1);
INSERT INTO alert_message VALUES ('al-0002', 2);

INSERT INTO held_alert VALUES (1, 'manager2', 'al-0001', '2026-03-02 08:31:15.25+00', 2);

INSERT INTO hit VALUES (1, 1, '维权', 'customer_risk', 3, 2, 4, 'r1');
INSERT INTO hit VALUES (2, 1, '12315', 'customer_risk', 3, 10, 15, 'r1');

INSERT INTO kf_cursor VALUES ('wkKF1', 'CURSOR-7', 3, '2026-03-02 08:31:15.25+00');

INSERT INTO kf_customer VALUES ('wkKF1', 'wmCUSTOMER', 1772440275, 0, '2026-03-02 08:31:15.25+00');

INSERT INTO kf_decision VALUES ('kf:msg-abc', 'wkKF1', 'wmCUSTOMER', 'handoff', '2026-03-02 08:31:15.25+00');

INSERT INTO kf_reply VALUES (1, 'r-3f2a9c', 'wkKF1', 'wmCUSTOMER', 'msg-abc', 'handoff', 'human', 'text', '{"content": "正在为您转接人工客服"}', 1772440275, 'sent', '', NULL, 1, '2026-03-02 08:31:15.25+00', '2026-03-02 08:32:15.25+00');
INSERT INTO kf_reply VALUES (2, 't-3f2a9c', 'wkKF1', 'wmCUSTOMER', 'msg-abc', 'transfer', '', '', '{"service_state": 2, "servicer_userid": ""}', 1772440275, 'send_failed_event', '', 4, 0, '2026-03-02 08:31:15.25+00', NULL);

INSERT INTO message VALUES (1, 'msg:1001', 'app', 'text', NULL, 'zhangsan', 'wx5823bf96d3bd56c7', '1000002', 1772440215, '我要维权，投诉到12315', '<xml><Content><![CDATA[我要维权，投诉到12315]]></Content></xml>', '2026-03-02 08:30:15.25+00', 'r1', 'app:zhangsan', 'member');
INSERT INTO message VALUES (2, 'kf:msg-abc', 'kf', 'text', NULL, 'wmCUSTOMER', 'wkKF1', NULL, 1772440275, '人工', '{"msgid": "msg-abc", "text": {"content": "人工"}}', '2026-03-02 08:31:15.25+00', 'r1', 'kf:wkKF1:wmCUSTOMER', 'customer');
INSERT INTO message VALUES (3, '0000000000000000000000000000000000000000000000000000000000000000', 'app', 'event', 'enter_agent', 'lisi', 'wx5823bf96d3bd56c7', '1000002', 1772440335, NULL, '<xml><Event><![CDATA[enter_agent]]></Event></xml>', '2026-03-02 08:32:15.25+00', NULL, NULL, NULL);

INSERT INTO message_flag VALUES (1, 'kf:msg-abc', 'recalled', '', 'kf:evt-recall', '2026-03-02 08:33:15.25+00');

INSERT INTO outbox VALUES (1, 'al-0001', 'card', '["manager1", "manager2"]', '{"card_type": "button_interaction", "task_id": "al-0001-1"}', 'al-0001-1', 'sent', 1, '2026-03-02 08:30:15.25+00', '2026-03-02 08:30:15.25+00', NULL, NULL, '2026-03-02 08:31:15.25+00', NULL, '["manager1"]', 'RESPONSE-CODE-1', true);
INSERT INTO outbox VALUES (2, NULL, 'digest', '["manager2"]', '{"markdown": "1 条告警"}', NULL, 'pending', 2, '2026-03-02 08:32:15.25+00', '2026-03-02 08:37:15.25+00', '2026-03-02 08:33:15.25+00', 'worker-1', NULL, 'errcode 45009: api freq out of limit', NULL, NULL, false);

INSERT INTO recipient_send VALUES (1, 'manager1', '2026-03-02 08:31:15.25+00', 1);

INSERT INTO sandbox_call VALUES (1, '2026-03-02 08:31:15.25+00', 'message/send', '{"touser": "manager1", "msgtype": "template_card"}', '{"errcode": 0, "errmsg": "ok", "response_code": "RESPONSE-CODE-1"}');

SELECT pg_catalog.setval('alert_audit_id_seq', 1, true);

SELECT pg_catalog.setval('held_alert_id_seq', 1, true);

SELECT pg_catalog.setval('hit_id_seq', 2, true);

SELECT pg_catalog.setval('kf_reply_id_seq', 2, true);

SELECT pg_catalog.setval('message_flag_id_seq', 1, true);

SELECT pg_catalog.setval('message_id_seq', 3, true);

SELECT pg_catalog.setval('outbox_id_seq', 2, true);

SELECT pg_catalog.setval('recipient_send_id_seq', 1, true);

SELECT pg_catalog.setval('sandbox_call_id_seq', 1, true);

ALTER TABLE ONLY alert_audit
    ADD CONSTRAINT alert_audit_pkey PRIMARY KEY (id);

ALTER TABLE ONLY alert_message
    ADD CONSTRAINT alert_message_pkey PRIMARY KEY (alert_id, message_id);

ALTER TABLE ONLY alert
    ADD CONSTRAINT alert_pkey PRIMARY KEY (alert_id);

ALTER TABLE ONLY held_alert
    ADD CONSTRAINT held_alert_pkey PRIMARY KEY (id);

ALTER TABLE ONLY hit
    ADD CONSTRAINT hit_pkey PRIMARY KEY (id);

ALTER TABLE ONLY kf_cursor
    ADD CONSTRAINT kf_cursor_pkey PRIMARY KEY (open_kfid);

ALTER TABLE ONLY kf_customer
    ADD CONSTRAINT kf_customer_pkey PRIMARY KEY (open_kfid, external_userid);

ALTER TABLE ONLY kf_decision
    ADD CONSTRAINT kf_decision_pkey PRIMARY KEY (dedupe_key);

ALTER TABLE ONLY kf_reply
    ADD CONSTRAINT kf_reply_msgid_key UNIQUE (msgid);

ALTER TABLE ONLY kf_reply
    ADD CONSTRAINT kf_reply_pkey PRIMARY KEY (id);

ALTER TABLE ONLY message_flag
    ADD CONSTRAINT message_flag_pkey PRIMARY KEY (id);

ALTER TABLE ONLY message
    ADD CONSTRAINT message_pkey PRIMARY KEY (id);

ALTER TABLE ONLY outbox
    ADD CONSTRAINT outbox_pkey PRIMARY KEY (id);

ALTER TABLE ONLY recipient_send
    ADD CONSTRAINT recipient_send_pkey PRIMARY KEY (id);

ALTER TABLE ONLY sandbox_call
    ADD CONSTRAINT sandbox_call_pkey PRIMARY KEY (id);

ALTER TABLE ONLY message_flag
    ADD CONSTRAINT uq_message_flag UNIQUE (dedupe_key, flag);

CREATE INDEX ix_alert_audit_alert_id ON alert_audit USING btree (alert_id);

CREATE INDEX ix_alert_conversation_kind ON alert USING btree (conversation_id, kind, last_at);

CREATE INDEX ix_alert_message_message_id ON alert_message USING btree (message_id);

CREATE INDEX ix_alert_status ON alert USING btree (status);

CREATE INDEX ix_held_alert_digest_id ON held_alert USING btree (digest_id);

CREATE INDEX ix_held_alert_recipient ON held_alert USING btree (recipient);

CREATE INDEX ix_hit_message_id ON hit USING btree (message_id);

CREATE INDEX ix_kf_reply_customer ON kf_reply USING btree (open_kfid, external_userid, status);

CREATE INDEX ix_kf_reply_status ON kf_reply USING btree (status);

CREATE INDEX ix_message_conversation_id ON message USING btree (conversation_id);

CREATE UNIQUE INDEX ix_message_dedupe_key ON message USING btree (dedupe_key);

CREATE INDEX ix_message_flag_dedupe_key ON message_flag USING btree (dedupe_key);

CREATE INDEX ix_message_received_at ON message USING btree (received_at);

CREATE INDEX ix_outbox_alert_id ON outbox USING btree (alert_id);

CREATE INDEX ix_outbox_due ON outbox USING btree (status, next_at);

CREATE INDEX ix_recipient_send_recent ON recipient_send USING btree (recipient, sent_at);

ALTER TABLE ONLY alert_message
    ADD CONSTRAINT alert_message_alert_id_fkey FOREIGN KEY (alert_id) REFERENCES alert(alert_id);

ALTER TABLE ONLY alert_message
    ADD CONSTRAINT alert_message_message_id_fkey FOREIGN KEY (message_id) REFERENCES message(id);

ALTER TABLE ONLY hit
    ADD CONSTRAINT hit_message_id_fkey FOREIGN KEY (message_id) REFERENCES message(id);

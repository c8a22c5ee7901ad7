BEGIN TRANSACTION;
CREATE TABLE alert (
	alert_id VARCHAR(128) NOT NULL, 
	conversation_id VARCHAR NOT NULL, 
	kind VARCHAR NOT NULL, 
	severity INTEGER NOT NULL, 
	words TEXT NOT NULL, 
	count INTEGER NOT NULL, 
	first_at DATETIME NOT NULL, 
	last_at DATETIME NOT NULL, 
	latest_text TEXT NOT NULL, 
	latest_message_id INTEGER, 
	recipients TEXT NOT NULL, 
	customer_id VARCHAR NOT NULL, 
	customer_name VARCHAR NOT NULL, 
	staff_userid VARCHAR NOT NULL, 
	status VARCHAR NOT NULL, 
	claimed_by VARCHAR NOT NULL, 
	closed_by VARCHAR NOT NULL, 
	closed_at DATETIME, 
	escalated BOOLEAN NOT NULL, 
	notified_severity INTEGER NOT NULL, 
	cards_sent INTEGER NOT NULL, 
	rules_version VARCHAR NOT NULL, 
	PRIMARY KEY (alert_id)
);
INSERT INTO "alert" VALUES('al-0001','app:zhangsan','customer_risk',3,'["维权", "12315"]',2,'2026-03-02 08:30:15.250000','2026-03-02 08:31:15.250000','我要维权，投诉到12315',1,'["manager1", "manager2"]','zhangsan','张三','','claimed','manager1','',NULL,1,3,1,'r1');
INSERT INTO "alert" VALUES('al-0002','kf:wkKF1:wmCUSTOMER','staff_conduct',2,'["红包"]',1,'2026-03-02 08:31:15.250000','2026-03-02 08:31:15.250000','加个红包',NULL,'[]','wmCUSTOMER','','servicer1','resolved','','manager2','2026-03-02 08:35:15.250000',0,2,0,'');
CREATE TABLE alert_audit (
	id INTEGER NOT NULL, 
	alert_id VARCHAR(128) NOT NULL, 
	user VARCHAR NOT NULL, 
	action VARCHAR NOT NULL, 
	source VARCHAR NOT NULL, 
	at DATETIME NOT NULL, 
	"before" VARCHAR NOT NULL, 
	"after" VARCHAR NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "alert_audit" VALUES(1,'al-0001','manager1','claim','card','2026-03-02 08:32:15.250000','open','claimed');
CREATE TABLE alert_message (
	alert_id VARCHAR(128) NOT NULL, 
	message_id INTEGER NOT NULL, 
	PRIMARY KEY (alert_id, message_id), 
	FOREIGN KEY(alert_id) REFERENCES alert (alert_id), 
	FOREIGN KEY(message_id) REFERENCES message (id)
);
INSERT INTO "alert_message" VALUES('al-0001',1);
INSERT INTO "alert_message" VALUES('al-0002',2);
CREATE TABLE held_alert (
	id INTEGER NOT NULL, 
	recipient VARCHAR NOT NULL, 
	alert_id VARCHAR(128) NOT NULL, 
	held_at DATETIME NOT NULL, 
	digest_id INTEGER NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "held_alert" VALUES(1,'manager2','al-0001','2026-03-02 08:31:15.250000',2);
CREATE TABLE hit (
	id INTEGER NOT NULL, 
	message_id INTEGER NOT NULL, 
	word VARCHAR NOT NULL, 
	rule_group VARCHAR NOT NULL, 
	severity INTEGER NOT NULL, 
	span_start INTEGER NOT NULL, 
	span_end INTEGER NOT NULL, 
	rules_version VARCHAR NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(message_id) REFERENCES message (id)
);
INSERT INTO "hit" VALUES(1,1,'维权','customer_risk',3,2,4,'r1');
INSERT INTO "hit" VALUES(2,1,'12315','customer_risk',3,10,15,'r1');
CREATE TABLE kf_cursor (
	open_kfid VARCHAR(128) NOT NULL, 
	cursor VARCHAR NOT NULL, 
	fence INTEGER NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (open_kfid)
);
INSERT INTO "kf_cursor" VALUES('wkKF1','CURSOR-7',3,'2026-03-02 08:31:15.250000');
CREATE TABLE kf_customer (
	open_kfid VARCHAR(128) NOT NULL, 
	external_userid VARCHAR(128) NOT NULL, 
	last_customer_at INTEGER NOT NULL, 
	unanswered INTEGER NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (open_kfid, external_userid)
);
INSERT INTO "kf_customer" VALUES('wkKF1','wmCUSTOMER',1772440275,0,'2026-03-02 08:31:15.250000');
CREATE TABLE kf_decision (
	dedupe_key VARCHAR(128) NOT NULL, 
	open_kfid VARCHAR(128) NOT NULL, 
	external_userid VARCHAR(128) NOT NULL, 
	outcome VARCHAR NOT NULL, 
	decided_at DATETIME NOT NULL, 
	PRIMARY KEY (dedupe_key)
);
INSERT INTO "kf_decision" VALUES('kf:msg-abc','wkKF1','wmCUSTOMER','handoff','2026-03-02 08:31:15.250000');
CREATE TABLE kf_reply (
	id INTEGER NOT NULL, 
	msgid VARCHAR(32) NOT NULL, 
	open_kfid VARCHAR(128) NOT NULL, 
	external_userid VARCHAR(128) NOT NULL, 
	in_reply_to TEXT NOT NULL, 
	kind VARCHAR NOT NULL, 
	rule VARCHAR NOT NULL, 
	msgtype VARCHAR NOT NULL, 
	body TEXT NOT NULL, 
	window_start INTEGER NOT NULL, 
	status VARCHAR NOT NULL, 
	error VARCHAR NOT NULL, 
	fail_type INTEGER, 
	attempts INTEGER NOT NULL, 
	created_at DATETIME NOT NULL, 
	sent_at DATETIME, 
	PRIMARY KEY (id), 
	UNIQUE (msgid)
);
INSERT INTO "kf_reply" VALUES(1,'r-3f2a9c','wkKF1','wmCUSTOMER','msg-abc','handoff','human','text','{"content": "正在为您转接人工客服"}',1772440275,'sent','',NULL,1,'2026-03-02 08:31:15.250000','2026-03-02 08:32:15.250000');
INSERT INTO "kf_reply" VALUES(2,'t-3f2a9c','wkKF1','wmCUSTOMER','msg-abc','transfer','','','{"service_state": 2, "servicer_userid": ""}',1772440275,'send_failed_event','',4,0,'2026-03-02 08:31:15.250000',NULL);
CREATE TABLE message (
	id INTEGER NOT NULL, 
	dedupe_key VARCHAR(128) NOT NULL, 
	channel VARCHAR NOT NULL, 
	msg_type VARCHAR NOT NULL, 
	event VARCHAR, 
	from_user VARCHAR NOT NULL, 
	to_user VARCHAR NOT NULL, 
	agent_id VARCHAR, 
	create_time INTEGER NOT NULL, 
	content TEXT, 
	raw TEXT NOT NULL, 
	received_at DATETIME NOT NULL, 
	rules_version VARCHAR, 
	conversation_id VARCHAR, 
	direction VARCHAR, 
	PRIMARY KEY (id)
);
INSERT INTO "message" VALUES(1,'msg:1001','app','text',NULL,'zhangsan','wx5823bf96d3bd56c7','1000002',1772440215,'我要维权，投诉到12315','<xml><Content><![CDATA[我要维权，投诉到12315]]></Content></xml>','2026-03-02 08:30:15.250000','r1','app:zhangsan','member');
INSERT INTO "message" VALUES(2,'kf:msg-abc','kf','text',NULL,'wmCUSTOMER','wkKF1',NULL,1772440275,'人工','{"msgid": "msg-abc", "text": {"content": "人工"}}','2026-03-02 08:31:15.250000','r1','kf:wkKF1:wmCUSTOMER','customer');
INSERT INTO "message" VALUES(3,'0000000000000000000000000000000000000000000000000000000000000000','app','event','enter_agent','lisi','wx5823bf96d3bd56c7','1000002',1772440335,NULL,'<xml><Event><![CDATA[enter_agent]]></Event></xml>','2026-03-02 08:32:15.250000',NULL,NULL,NULL);
CREATE TABLE message_flag (
	id INTEGER NOT NULL, 
	dedupe_key VARCHAR(128) NOT NULL, 
	flag VARCHAR NOT NULL, 
	detail VARCHAR NOT NULL, 
	source_key VARCHAR(128) NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_message_flag UNIQUE (dedupe_key, flag)
);
INSERT INTO "message_flag" VALUES(1,'kf:msg-abc','recalled','','kf:evt-recall','2026-03-02 08:33:15.250000');
CREATE TABLE outbox (
	id INTEGER NOT NULL, 
	alert_id VARCHAR(128), 
	kind VARCHAR NOT NULL, 
	recipients TEXT NOT NULL, 
	payload TEXT NOT NULL, 
	task_id VARCHAR(128), 
	status VARCHAR NOT NULL, 
	attempts INTEGER NOT NULL, 
	created_at DATETIME NOT NULL, 
	next_at DATETIME NOT NULL, 
	lease_until DATETIME, 
	lease_owner VARCHAR, 
	sent_at DATETIME, 
	last_error TEXT, 
	delivered_to TEXT, 
	response_code TEXT, 
	response_code_used BOOLEAN NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "outbox" VALUES(1,'al-0001','card','["manager1", "manager2"]','{"card_type": "button_interaction", "task_id": "al-0001-1"}','al-0001-1','sent',1,'2026-03-02 08:30:15.250000','2026-03-02 08:30:15.250000',NULL,NULL,'2026-03-02 08:31:15.250000',NULL,'["manager1"]','RESPONSE-CODE-1',1);
INSERT INTO "outbox" VALUES(2,NULL,'digest','["manager2"]','{"markdown": "1 条告警"}',NULL,'pending',2,'2026-03-02 08:32:15.250000','2026-03-02 08:37:15.250000','2026-03-02 08:33:15.250000','worker-1',NULL,'errcode 45009: api freq out of limit',NULL,NULL,0);
CREATE TABLE recipient_send (
	id INTEGER NOT NULL, 
	recipient VARCHAR NOT NULL, 
	sent_at DATETIME NOT NULL, 
	outbox_id INTEGER NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "recipient_send" VALUES(1,'manager1','2026-03-02 08:31:15.250000',1);
CREATE TABLE sandbox_call (
	id INTEGER NOT NULL, 
	at DATETIME NOT NULL, 
	path VARCHAR NOT NULL, 
	body TEXT NOT NULL, 
	answer TEXT NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "sandbox_call" VALUES(1,'2026-03-02 08:31:15.250000','message/send','{"touser": "manager1", "msgtype": "template_card"}','{"errcode": 0, "errmsg": "ok", "response_code": "RESPONSE-CODE-1"}');
CREATE INDEX ix_message_received_at ON message (received_at);
CREATE INDEX ix_message_conversation_id ON message (conversation_id);
CREATE UNIQUE INDEX ix_message_dedupe_key ON message (dedupe_key);
CREATE INDEX ix_alert_conversation_kind ON alert (conversation_id, kind, last_at);
CREATE INDEX ix_alert_status ON alert (status);
CREATE INDEX ix_outbox_alert_id ON outbox (alert_id);
CREATE INDEX ix_outbox_due ON outbox (status, next_at);
CREATE INDEX ix_recipient_send_recent ON recipient_send (recipient, sent_at);
CREATE INDEX ix_held_alert_digest_id ON held_alert (digest_id);
CREATE INDEX ix_held_alert_recipient ON held_alert (recipient);
CREATE INDEX ix_alert_audit_alert_id ON alert_audit (alert_id);
CREATE INDEX ix_kf_reply_status ON kf_reply (status);
CREATE INDEX ix_kf_reply_customer ON kf_reply (open_kfid, external_userid, status);
CREATE INDEX ix_message_flag_dedupe_key ON message_flag (dedupe_key);
CREATE INDEX ix_hit_message_id ON hit (message_id);
CREATE INDEX ix_alert_message_message_id ON alert_message (message_id);
COMMIT;

//! Tencent Cloud SES error codes. Generated from the SDK's `errorcodes.py` (tencentcloud-sdk-python-ses 3.1.135)
//! plus the common API codes; regenerate rather than edit by hand when the SDK adds codes.

/// Every error code of the Tencent Cloud SES 2020-10-02 API (the SDK's `errorcodes.py`) plus the
/// common API-gateway codes. `as_str` gives the exact wire string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `AuthFailure.UnauthorizedOperation`: CAM 后台鉴权失败
    AuthFailureUnauthorizedOperation,
    /// `FailedOperation`: 操作失败。
    FailedOperation,
    /// `FailedOperation.AttachContentToolarge`: 附件太大，请参考单个附件以及附件总量大小限制。
    FailedOperationAttachContentToolarge,
    /// `FailedOperation.DKIMNotApplied`: DKIM没有创建，需要提前创建
    FailedOperationDKIMNotApplied,
    /// `FailedOperation.EmailAddrInBlacklist`: 邮件地址在黑名单中。
    FailedOperationEmailAddrInBlacklist,
    /// `FailedOperation.EmailContentToolarge`: 邮件内容太大，请减少发送邮件内容。
    FailedOperationEmailContentToolarge,
    /// `FailedOperation.ExceedSendLimit`: 超出当日总量发送限制。
    FailedOperationExceedSendLimit,
    /// `FailedOperation.ExceedTemplateLimit`: 超出最大模板数量限制。
    FailedOperationExceedTemplateLimit,
    /// `FailedOperation.FileURLNotExist`: 链接地址无效或者不存在
    FailedOperationFileURLNotExist,
    /// `FailedOperation.FrequencyLimit`: 触发频率控制，短时间内对同一地址发送过多邮件。
    FailedOperationFrequencyLimit,
    /// `FailedOperation.HighRejectionRate`: 拒信率过高，被临时block。
    FailedOperationHighRejectionRate,
    /// `FailedOperation.IllegalURL`: 邮件包含不合规链接
    FailedOperationIllegalURL,
    /// `FailedOperation.IncorrectEmail`: 邮箱地址错误。
    FailedOperationIncorrectEmail,
    /// `FailedOperation.IncorrectSender`: 发件人格式不正确。请参考文档示例填写。
    FailedOperationIncorrectSender,
    /// `FailedOperation.InsufficientBalance`: 余额不足，账号欠费等。
    FailedOperationInsufficientBalance,
    /// `FailedOperation.InsufficientQuota`: 套餐包额度不足。
    FailedOperationInsufficientQuota,
    /// `FailedOperation.InvalidAttachName`: 不支持的附件名称，请检查附件名称是否含有特殊字符，详情请参考[附录附件说明](https://cloud.tencent.com/document/product/1288/51951)。
    FailedOperationInvalidAttachName,
    /// `FailedOperation.InvalidLimit`: 超过查询限制，Limit最大支持100。
    FailedOperationInvalidLimit,
    /// `FailedOperation.InvalidTemplateID`: 模板ID无效或者不可用。
    FailedOperationInvalidTemplateID,
    /// `FailedOperation.MissingEmailContent`: 缺少发信内容（TemplateData和Simple不能同时为空)。
    FailedOperationMissingEmailContent,
    /// `FailedOperation.NoAttachPermission`: 没有附件发送权限，请检查。
    FailedOperationNoAttachPermission,
    /// `FailedOperation.NotAuthenticatedSender`: 发件sender没有经过认证，无法发送。
    FailedOperationNotAuthenticatedSender,
    /// `FailedOperation.NotSupportDate`: 不支持查询该日期邮件记录，仅支持查询90天之内的数据。
    FailedOperationNotSupportDate,
    /// `FailedOperation.ProtocolCheckErr`: 协议检查错误，请检查协议是否正确。
    FailedOperationProtocolCheckErr,
    /// `FailedOperation.ReceiverHasUnsubscribed`: 收件人已退订。
    FailedOperationReceiverHasUnsubscribed,
    /// `FailedOperation.RejectedByRecipients`: 邮件被收信人拒绝。
    FailedOperationRejectedByRecipients,
    /// `FailedOperation.SendEmailErr`: 您的发送遇到问题，请联系腾讯云提交工单沟通原因并解决。
    FailedOperationSendEmailErr,
    /// `FailedOperation.ServiceNotAvailable`: 临时性错误，请求未生效，请重试。
    FailedOperationServiceNotAvailable,
    /// `FailedOperation.TemplateContentToolarge`: 模板内容太大，请减少模板内容。
    FailedOperationTemplateContentToolarge,
    /// `FailedOperation.TemporaryBlocked`: 因触发了对应的收件服务商限制，邮件推送平台会对该服务商发信暂停10分钟，10分钟后自动解除。
    FailedOperationTemporaryBlocked,
    /// `FailedOperation.TooManyAttachments`: 附件数量太多，单封邮件最多支持10个附件。
    FailedOperationTooManyAttachments,
    /// `FailedOperation.TooManyRecipients`: 收件人数太多，最多支持同时发送50人。
    FailedOperationTooManyRecipients,
    /// `FailedOperation.URLForbidden`: 禁止到达率低用户在邮件内容中带有URL 网页链接
    FailedOperationURLForbidden,
    /// `FailedOperation.UnsupportMailType`: 不支持的邮箱类型。
    FailedOperationUnsupportMailType,
    /// `FailedOperation.WithOutPermission`: 仅支持使用模板发送邮件。
    FailedOperationWithOutPermission,
    /// `FailedOperation.WrongContentJson`: TemplateData字段格式不正确，请保持为json格式。
    FailedOperationWrongContentJson,
    /// `InternalError`: 内部错误。
    InternalError,
    /// `InternalError.QueryDataBaseFailed`: 查询数据库超时或失败
    InternalErrorQueryDataBaseFailed,
    /// `InvalidParameter`: 参数错误。
    InvalidParameter,
    /// `InvalidParameter.AppIdIsRequired`: AppId不存在
    InvalidParameterAppIdIsRequired,
    /// `InvalidParameter.InvalidEndTimeFormat`: 结束时间格式错误
    InvalidParameterInvalidEndTimeFormat,
    /// `InvalidParameter.InvalidStartTimeFormat`: 开始时间格式错误
    InvalidParameterInvalidStartTimeFormat,
    /// `InvalidParameterValue`: 参数取值错误。
    InvalidParameterValue,
    /// `InvalidParameterValue.AttachContentIsWrong`: 附件内容错误，请检查base64内容是否正确。
    InvalidParameterValueAttachContentIsWrong,
    /// `InvalidParameterValue.BeginTimeBeforeNow`: 开始时间不能早于当前时间。
    InvalidParameterValueBeginTimeBeforeNow,
    /// `InvalidParameterValue.CreatedByOther`: 该域名已被其他腾讯云账号创建。
    InvalidParameterValueCreatedByOther,
    /// `InvalidParameterValue.EmailAddressIsNULL`: 收件或者发件地址为空，请检查邮件地址。
    InvalidParameterValueEmailAddressIsNULL,
    /// `InvalidParameterValue.EmailContentIsWrong`: 邮件内容错误，请检查TEXT/HTML base64是否正确。
    InvalidParameterValueEmailContentIsWrong,
    /// `InvalidParameterValue.IllegalEmailAddress`: 邮件地址不合法，请检查邮件地址格式。
    InvalidParameterValueIllegalEmailAddress,
    /// `InvalidParameterValue.IllegalSenderName`: 发信人别名错误。
    InvalidParameterValueIllegalSenderName,
    /// `InvalidParameterValue.InValidTemplateData`: 收件人地址附带的模板参数不能包含html标签。
    InvalidParameterValueInValidTemplateData,
    /// `InvalidParameterValue.InvalidEmailIdentity`: 域名取值错误。
    InvalidParameterValueInvalidEmailIdentity,
    /// `InvalidParameterValue.InvalidSmtpPassWord`: 密码长度为10~20位，且必须至少包含2位不重复的数字、小写字母、大写字母。
    InvalidParameterValueInvalidSmtpPassWord,
    /// `InvalidParameterValue.NoSuchSender`: 您没有这个发件地址，请检查是否存在。
    InvalidParameterValueNoSuchSender,
    /// `InvalidParameterValue.NotExistDomain`: 该域名还没有创建，请先新建发信域名。
    InvalidParameterValueNotExistDomain,
    /// `InvalidParameterValue.ReceiverDescIllegal`: 收件人列表描述不合法，描述不可包含特殊字符，字符长度范围:1~300。
    InvalidParameterValueReceiverDescIllegal,
    /// `InvalidParameterValue.ReceiverEmailInvalid`: 收件人地址错误。
    InvalidParameterValueReceiverEmailInvalid,
    /// `InvalidParameterValue.ReceiverNameIllegal`: 收件人列表名字不合法，请检查字符内容及大小。
    InvalidParameterValueReceiverNameIllegal,
    /// `InvalidParameterValue.RepeatCreation`: 该域名已经创建过了，请勿重复创建。
    InvalidParameterValueRepeatCreation,
    /// `InvalidParameterValue.RepeatEmailAddress`: 该邮件地址已经创建过了，请勿重复创建。
    InvalidParameterValueRepeatEmailAddress,
    /// `InvalidParameterValue.RepeatReceiverName`: 收件人列表名称重复。
    InvalidParameterValueRepeatReceiverName,
    /// `InvalidParameterValue.SubjectLengthError`: 邮件主题长度必须为1-100。
    InvalidParameterValueSubjectLengthError,
    /// `InvalidParameterValue.TemplateContentIsNULL`: 模板资源为空。
    InvalidParameterValueTemplateContentIsNULL,
    /// `InvalidParameterValue.TemplateContentIsWrong`: 模板内容错误，请检查base64内容是否正确。
    InvalidParameterValueTemplateContentIsWrong,
    /// `InvalidParameterValue.TemplateDataError`: 模板参数必须为json格式。
    InvalidParameterValueTemplateDataError,
    /// `InvalidParameterValue.TemplateDataInconsistent`: 模板参数变量名与之前不一致。
    InvalidParameterValueTemplateDataInconsistent,
    /// `InvalidParameterValue.TemplateDataLenLimit`: 单条收件人地址附带的模板参数(整个 JSON 结构)， 长度超过限制 800 bytes
    InvalidParameterValueTemplateDataLenLimit,
    /// `InvalidParameterValue.TemplateNameIllegal`: 模板名字不合法，请检查字符内容及大小。
    InvalidParameterValueTemplateNameIllegal,
    /// `InvalidParameterValue.TemplateNameIsNULL`: 模板名字不能为空。
    InvalidParameterValueTemplateNameIsNULL,
    /// `InvalidParameterValue.TemplateNotExist`: 不存在该模板，请先创建模板。
    InvalidParameterValueTemplateNotExist,
    /// `InvalidParameterValue.TemplateNotMatchData`: 模板变量与收件人列表参数不一一对应。
    InvalidParameterValueTemplateNotMatchData,
    /// `InvalidParameterValue.WrongDate`: 搜索日期错误，请检查日期及格式是否有效。
    InvalidParameterValueWrongDate,
    /// `LimitExceeded`: 超过配额限制。
    LimitExceeded,
    /// `LimitExceeded.ExceedReceiverLimit`: 收件人列表数量超过限制。
    LimitExceededExceedReceiverLimit,
    /// `LimitExceeded.ReceiverDetailCountLimit`: 该收件人列表包含的收件人地址总量超过限制。
    LimitExceededReceiverDetailCountLimit,
    /// `LimitExceeded.ReceiverDetailRequestLimit`: 请求的收件人地址数量超过限制。
    LimitExceededReceiverDetailRequestLimit,
    /// `MissingParameter`: 缺少参数错误。
    MissingParameter,
    /// `MissingParameter.CycleParamNecessary`: 周期发送任务需选择开始时间和间隔时间。
    MissingParameterCycleParamNecessary,
    /// `MissingParameter.EmailsNecessary`: 收件人地址必须传。
    MissingParameterEmailsNecessary,
    /// `MissingParameter.ReceiverIdNecessary`: 收件人列表Id必传。
    MissingParameterReceiverIdNecessary,
    /// `MissingParameter.SendParamNecessary`: 发件地址、收件人列表,发件模板必须传。
    MissingParameterSendParamNecessary,
    /// `MissingParameter.TimedParamNecessary`: 定时发送任务需选择开始时间。
    MissingParameterTimedParamNecessary,
    /// `OperationDenied`: 操作被拒绝。
    OperationDenied,
    /// `OperationDenied.DomainNotVerified`: 域名验证失败，请检查域名是否通过验证。
    OperationDeniedDomainNotVerified,
    /// `OperationDenied.ExceedDomainLimit`: 超出最大发信域名限制。
    OperationDeniedExceedDomainLimit,
    /// `OperationDenied.ExceedSenderLimit`: 超出最大发信地址限制。
    OperationDeniedExceedSenderLimit,
    /// `OperationDenied.NotAllowDelete`: 不允许删除域名
    OperationDeniedNotAllowDelete,
    /// `OperationDenied.ReceiverIsOperating`: 收件人列表正在上传中，请稍后操作。
    OperationDeniedReceiverIsOperating,
    /// `OperationDenied.ReceiverNotExist`: 收件人列表不存在。
    OperationDeniedReceiverNotExist,
    /// `OperationDenied.ReceiverStatusError`: 收件人列表空或状态不是上传完成。
    OperationDeniedReceiverStatusError,
    /// `OperationDenied.RepeatPassWord`: 不能与上一次设置密码相同。
    OperationDeniedRepeatPassWord,
    /// `OperationDenied.SendAddressStatusError`: 发信地址不存在或者状态不是通过状态。
    OperationDeniedSendAddressStatusError,
    /// `OperationDenied.SenderWithDomainIsNotEmpty`: 与该域名相关的发信地址不为空
    OperationDeniedSenderWithDomainIsNotEmpty,
    /// `OperationDenied.TemplateStatusError`: 发信模板不存在或者状态不是审核通过状态。
    OperationDeniedTemplateStatusError,
    /// `RequestLimitExceeded`: 请求的次数超过了频率限制。
    RequestLimitExceeded,
    /// `ResourceInsufficient`: 资源不足。
    ResourceInsufficient,
    /// `ResourceNotFound`: 资源不存在。
    ResourceNotFound,
    /// `ResourceUnavailable`: 资源不可用。
    ResourceUnavailable,
    /// `UnknownParameter`: 未知参数错误。
    UnknownParameter,
    /// `UnsupportedOperation`: 操作不支持。
    UnsupportedOperation,
    /// `AuthFailure.SignatureFailure`: Signature verification failed.
    AuthFailureSignatureFailure,
    /// `AuthFailure.SignatureExpire`: The request timestamp is outside the allowed clock skew.
    AuthFailureSignatureExpire,
    /// `AuthFailure.SecretIdNotFound`: The SecretId does not exist.
    AuthFailureSecretIdNotFound,
    /// `AuthFailure.InvalidAuthorization`: The Authorization header is malformed.
    AuthFailureInvalidAuthorization,
    /// `AuthFailure.MFAFailure`: MFA failure.
    AuthFailureMFAFailure,
    /// `AuthFailure.TokenFailure`: Token failure.
    AuthFailureTokenFailure,
    /// `AuthFailure.InvalidSecretId`: The SecretId is invalid.
    AuthFailureInvalidSecretId,
    /// `InvalidAction`: The action does not exist.
    InvalidAction,
    /// `UnsupportedProtocol`: Unsupported protocol.
    UnsupportedProtocol,
    /// `UnsupportedRegion`: Unsupported region.
    UnsupportedRegion,
    /// `InvalidRequest`: The request is invalid.
    InvalidRequest,
    /// `RequestSizeLimitExceeded`: The request body is too large.
    RequestSizeLimitExceeded,
    /// `ResponseSizeLimitExceeded`: The response is too large.
    ResponseSizeLimitExceeded,
    /// `NoSuchVersion`: The API version does not exist.
    NoSuchVersion,
    /// `UnauthorizedOperation`: Unauthorized operation.
    UnauthorizedOperation,
    /// `ServiceUnavailable`: Service unavailable.
    ServiceUnavailable,
    /// `ActionOffline`: The action is offline.
    ActionOffline,
}

impl ErrorCode {
    /// All codes, in declaration order.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::AuthFailureUnauthorizedOperation,
        ErrorCode::FailedOperation,
        ErrorCode::FailedOperationAttachContentToolarge,
        ErrorCode::FailedOperationDKIMNotApplied,
        ErrorCode::FailedOperationEmailAddrInBlacklist,
        ErrorCode::FailedOperationEmailContentToolarge,
        ErrorCode::FailedOperationExceedSendLimit,
        ErrorCode::FailedOperationExceedTemplateLimit,
        ErrorCode::FailedOperationFileURLNotExist,
        ErrorCode::FailedOperationFrequencyLimit,
        ErrorCode::FailedOperationHighRejectionRate,
        ErrorCode::FailedOperationIllegalURL,
        ErrorCode::FailedOperationIncorrectEmail,
        ErrorCode::FailedOperationIncorrectSender,
        ErrorCode::FailedOperationInsufficientBalance,
        ErrorCode::FailedOperationInsufficientQuota,
        ErrorCode::FailedOperationInvalidAttachName,
        ErrorCode::FailedOperationInvalidLimit,
        ErrorCode::FailedOperationInvalidTemplateID,
        ErrorCode::FailedOperationMissingEmailContent,
        ErrorCode::FailedOperationNoAttachPermission,
        ErrorCode::FailedOperationNotAuthenticatedSender,
        ErrorCode::FailedOperationNotSupportDate,
        ErrorCode::FailedOperationProtocolCheckErr,
        ErrorCode::FailedOperationReceiverHasUnsubscribed,
        ErrorCode::FailedOperationRejectedByRecipients,
        ErrorCode::FailedOperationSendEmailErr,
        ErrorCode::FailedOperationServiceNotAvailable,
        ErrorCode::FailedOperationTemplateContentToolarge,
        ErrorCode::FailedOperationTemporaryBlocked,
        ErrorCode::FailedOperationTooManyAttachments,
        ErrorCode::FailedOperationTooManyRecipients,
        ErrorCode::FailedOperationURLForbidden,
        ErrorCode::FailedOperationUnsupportMailType,
        ErrorCode::FailedOperationWithOutPermission,
        ErrorCode::FailedOperationWrongContentJson,
        ErrorCode::InternalError,
        ErrorCode::InternalErrorQueryDataBaseFailed,
        ErrorCode::InvalidParameter,
        ErrorCode::InvalidParameterAppIdIsRequired,
        ErrorCode::InvalidParameterInvalidEndTimeFormat,
        ErrorCode::InvalidParameterInvalidStartTimeFormat,
        ErrorCode::InvalidParameterValue,
        ErrorCode::InvalidParameterValueAttachContentIsWrong,
        ErrorCode::InvalidParameterValueBeginTimeBeforeNow,
        ErrorCode::InvalidParameterValueCreatedByOther,
        ErrorCode::InvalidParameterValueEmailAddressIsNULL,
        ErrorCode::InvalidParameterValueEmailContentIsWrong,
        ErrorCode::InvalidParameterValueIllegalEmailAddress,
        ErrorCode::InvalidParameterValueIllegalSenderName,
        ErrorCode::InvalidParameterValueInValidTemplateData,
        ErrorCode::InvalidParameterValueInvalidEmailIdentity,
        ErrorCode::InvalidParameterValueInvalidSmtpPassWord,
        ErrorCode::InvalidParameterValueNoSuchSender,
        ErrorCode::InvalidParameterValueNotExistDomain,
        ErrorCode::InvalidParameterValueReceiverDescIllegal,
        ErrorCode::InvalidParameterValueReceiverEmailInvalid,
        ErrorCode::InvalidParameterValueReceiverNameIllegal,
        ErrorCode::InvalidParameterValueRepeatCreation,
        ErrorCode::InvalidParameterValueRepeatEmailAddress,
        ErrorCode::InvalidParameterValueRepeatReceiverName,
        ErrorCode::InvalidParameterValueSubjectLengthError,
        ErrorCode::InvalidParameterValueTemplateContentIsNULL,
        ErrorCode::InvalidParameterValueTemplateContentIsWrong,
        ErrorCode::InvalidParameterValueTemplateDataError,
        ErrorCode::InvalidParameterValueTemplateDataInconsistent,
        ErrorCode::InvalidParameterValueTemplateDataLenLimit,
        ErrorCode::InvalidParameterValueTemplateNameIllegal,
        ErrorCode::InvalidParameterValueTemplateNameIsNULL,
        ErrorCode::InvalidParameterValueTemplateNotExist,
        ErrorCode::InvalidParameterValueTemplateNotMatchData,
        ErrorCode::InvalidParameterValueWrongDate,
        ErrorCode::LimitExceeded,
        ErrorCode::LimitExceededExceedReceiverLimit,
        ErrorCode::LimitExceededReceiverDetailCountLimit,
        ErrorCode::LimitExceededReceiverDetailRequestLimit,
        ErrorCode::MissingParameter,
        ErrorCode::MissingParameterCycleParamNecessary,
        ErrorCode::MissingParameterEmailsNecessary,
        ErrorCode::MissingParameterReceiverIdNecessary,
        ErrorCode::MissingParameterSendParamNecessary,
        ErrorCode::MissingParameterTimedParamNecessary,
        ErrorCode::OperationDenied,
        ErrorCode::OperationDeniedDomainNotVerified,
        ErrorCode::OperationDeniedExceedDomainLimit,
        ErrorCode::OperationDeniedExceedSenderLimit,
        ErrorCode::OperationDeniedNotAllowDelete,
        ErrorCode::OperationDeniedReceiverIsOperating,
        ErrorCode::OperationDeniedReceiverNotExist,
        ErrorCode::OperationDeniedReceiverStatusError,
        ErrorCode::OperationDeniedRepeatPassWord,
        ErrorCode::OperationDeniedSendAddressStatusError,
        ErrorCode::OperationDeniedSenderWithDomainIsNotEmpty,
        ErrorCode::OperationDeniedTemplateStatusError,
        ErrorCode::RequestLimitExceeded,
        ErrorCode::ResourceInsufficient,
        ErrorCode::ResourceNotFound,
        ErrorCode::ResourceUnavailable,
        ErrorCode::UnknownParameter,
        ErrorCode::UnsupportedOperation,
        ErrorCode::AuthFailureSignatureFailure,
        ErrorCode::AuthFailureSignatureExpire,
        ErrorCode::AuthFailureSecretIdNotFound,
        ErrorCode::AuthFailureInvalidAuthorization,
        ErrorCode::AuthFailureMFAFailure,
        ErrorCode::AuthFailureTokenFailure,
        ErrorCode::AuthFailureInvalidSecretId,
        ErrorCode::InvalidAction,
        ErrorCode::UnsupportedProtocol,
        ErrorCode::UnsupportedRegion,
        ErrorCode::InvalidRequest,
        ErrorCode::RequestSizeLimitExceeded,
        ErrorCode::ResponseSizeLimitExceeded,
        ErrorCode::NoSuchVersion,
        ErrorCode::UnauthorizedOperation,
        ErrorCode::ServiceUnavailable,
        ErrorCode::ActionOffline,
    ];

    /// The code as it appears on the wire, e.g. `FailedOperation.FrequencyLimit`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::AuthFailureUnauthorizedOperation => "AuthFailure.UnauthorizedOperation",
            ErrorCode::FailedOperation => "FailedOperation",
            ErrorCode::FailedOperationAttachContentToolarge => "FailedOperation.AttachContentToolarge",
            ErrorCode::FailedOperationDKIMNotApplied => "FailedOperation.DKIMNotApplied",
            ErrorCode::FailedOperationEmailAddrInBlacklist => "FailedOperation.EmailAddrInBlacklist",
            ErrorCode::FailedOperationEmailContentToolarge => "FailedOperation.EmailContentToolarge",
            ErrorCode::FailedOperationExceedSendLimit => "FailedOperation.ExceedSendLimit",
            ErrorCode::FailedOperationExceedTemplateLimit => "FailedOperation.ExceedTemplateLimit",
            ErrorCode::FailedOperationFileURLNotExist => "FailedOperation.FileURLNotExist",
            ErrorCode::FailedOperationFrequencyLimit => "FailedOperation.FrequencyLimit",
            ErrorCode::FailedOperationHighRejectionRate => "FailedOperation.HighRejectionRate",
            ErrorCode::FailedOperationIllegalURL => "FailedOperation.IllegalURL",
            ErrorCode::FailedOperationIncorrectEmail => "FailedOperation.IncorrectEmail",
            ErrorCode::FailedOperationIncorrectSender => "FailedOperation.IncorrectSender",
            ErrorCode::FailedOperationInsufficientBalance => "FailedOperation.InsufficientBalance",
            ErrorCode::FailedOperationInsufficientQuota => "FailedOperation.InsufficientQuota",
            ErrorCode::FailedOperationInvalidAttachName => "FailedOperation.InvalidAttachName",
            ErrorCode::FailedOperationInvalidLimit => "FailedOperation.InvalidLimit",
            ErrorCode::FailedOperationInvalidTemplateID => "FailedOperation.InvalidTemplateID",
            ErrorCode::FailedOperationMissingEmailContent => "FailedOperation.MissingEmailContent",
            ErrorCode::FailedOperationNoAttachPermission => "FailedOperation.NoAttachPermission",
            ErrorCode::FailedOperationNotAuthenticatedSender => "FailedOperation.NotAuthenticatedSender",
            ErrorCode::FailedOperationNotSupportDate => "FailedOperation.NotSupportDate",
            ErrorCode::FailedOperationProtocolCheckErr => "FailedOperation.ProtocolCheckErr",
            ErrorCode::FailedOperationReceiverHasUnsubscribed => "FailedOperation.ReceiverHasUnsubscribed",
            ErrorCode::FailedOperationRejectedByRecipients => "FailedOperation.RejectedByRecipients",
            ErrorCode::FailedOperationSendEmailErr => "FailedOperation.SendEmailErr",
            ErrorCode::FailedOperationServiceNotAvailable => "FailedOperation.ServiceNotAvailable",
            ErrorCode::FailedOperationTemplateContentToolarge => "FailedOperation.TemplateContentToolarge",
            ErrorCode::FailedOperationTemporaryBlocked => "FailedOperation.TemporaryBlocked",
            ErrorCode::FailedOperationTooManyAttachments => "FailedOperation.TooManyAttachments",
            ErrorCode::FailedOperationTooManyRecipients => "FailedOperation.TooManyRecipients",
            ErrorCode::FailedOperationURLForbidden => "FailedOperation.URLForbidden",
            ErrorCode::FailedOperationUnsupportMailType => "FailedOperation.UnsupportMailType",
            ErrorCode::FailedOperationWithOutPermission => "FailedOperation.WithOutPermission",
            ErrorCode::FailedOperationWrongContentJson => "FailedOperation.WrongContentJson",
            ErrorCode::InternalError => "InternalError",
            ErrorCode::InternalErrorQueryDataBaseFailed => "InternalError.QueryDataBaseFailed",
            ErrorCode::InvalidParameter => "InvalidParameter",
            ErrorCode::InvalidParameterAppIdIsRequired => "InvalidParameter.AppIdIsRequired",
            ErrorCode::InvalidParameterInvalidEndTimeFormat => "InvalidParameter.InvalidEndTimeFormat",
            ErrorCode::InvalidParameterInvalidStartTimeFormat => "InvalidParameter.InvalidStartTimeFormat",
            ErrorCode::InvalidParameterValue => "InvalidParameterValue",
            ErrorCode::InvalidParameterValueAttachContentIsWrong => "InvalidParameterValue.AttachContentIsWrong",
            ErrorCode::InvalidParameterValueBeginTimeBeforeNow => "InvalidParameterValue.BeginTimeBeforeNow",
            ErrorCode::InvalidParameterValueCreatedByOther => "InvalidParameterValue.CreatedByOther",
            ErrorCode::InvalidParameterValueEmailAddressIsNULL => "InvalidParameterValue.EmailAddressIsNULL",
            ErrorCode::InvalidParameterValueEmailContentIsWrong => "InvalidParameterValue.EmailContentIsWrong",
            ErrorCode::InvalidParameterValueIllegalEmailAddress => "InvalidParameterValue.IllegalEmailAddress",
            ErrorCode::InvalidParameterValueIllegalSenderName => "InvalidParameterValue.IllegalSenderName",
            ErrorCode::InvalidParameterValueInValidTemplateData => "InvalidParameterValue.InValidTemplateData",
            ErrorCode::InvalidParameterValueInvalidEmailIdentity => "InvalidParameterValue.InvalidEmailIdentity",
            ErrorCode::InvalidParameterValueInvalidSmtpPassWord => "InvalidParameterValue.InvalidSmtpPassWord",
            ErrorCode::InvalidParameterValueNoSuchSender => "InvalidParameterValue.NoSuchSender",
            ErrorCode::InvalidParameterValueNotExistDomain => "InvalidParameterValue.NotExistDomain",
            ErrorCode::InvalidParameterValueReceiverDescIllegal => "InvalidParameterValue.ReceiverDescIllegal",
            ErrorCode::InvalidParameterValueReceiverEmailInvalid => "InvalidParameterValue.ReceiverEmailInvalid",
            ErrorCode::InvalidParameterValueReceiverNameIllegal => "InvalidParameterValue.ReceiverNameIllegal",
            ErrorCode::InvalidParameterValueRepeatCreation => "InvalidParameterValue.RepeatCreation",
            ErrorCode::InvalidParameterValueRepeatEmailAddress => "InvalidParameterValue.RepeatEmailAddress",
            ErrorCode::InvalidParameterValueRepeatReceiverName => "InvalidParameterValue.RepeatReceiverName",
            ErrorCode::InvalidParameterValueSubjectLengthError => "InvalidParameterValue.SubjectLengthError",
            ErrorCode::InvalidParameterValueTemplateContentIsNULL => "InvalidParameterValue.TemplateContentIsNULL",
            ErrorCode::InvalidParameterValueTemplateContentIsWrong => "InvalidParameterValue.TemplateContentIsWrong",
            ErrorCode::InvalidParameterValueTemplateDataError => "InvalidParameterValue.TemplateDataError",
            ErrorCode::InvalidParameterValueTemplateDataInconsistent => {
                "InvalidParameterValue.TemplateDataInconsistent"
            }
            ErrorCode::InvalidParameterValueTemplateDataLenLimit => "InvalidParameterValue.TemplateDataLenLimit",
            ErrorCode::InvalidParameterValueTemplateNameIllegal => "InvalidParameterValue.TemplateNameIllegal",
            ErrorCode::InvalidParameterValueTemplateNameIsNULL => "InvalidParameterValue.TemplateNameIsNULL",
            ErrorCode::InvalidParameterValueTemplateNotExist => "InvalidParameterValue.TemplateNotExist",
            ErrorCode::InvalidParameterValueTemplateNotMatchData => "InvalidParameterValue.TemplateNotMatchData",
            ErrorCode::InvalidParameterValueWrongDate => "InvalidParameterValue.WrongDate",
            ErrorCode::LimitExceeded => "LimitExceeded",
            ErrorCode::LimitExceededExceedReceiverLimit => "LimitExceeded.ExceedReceiverLimit",
            ErrorCode::LimitExceededReceiverDetailCountLimit => "LimitExceeded.ReceiverDetailCountLimit",
            ErrorCode::LimitExceededReceiverDetailRequestLimit => "LimitExceeded.ReceiverDetailRequestLimit",
            ErrorCode::MissingParameter => "MissingParameter",
            ErrorCode::MissingParameterCycleParamNecessary => "MissingParameter.CycleParamNecessary",
            ErrorCode::MissingParameterEmailsNecessary => "MissingParameter.EmailsNecessary",
            ErrorCode::MissingParameterReceiverIdNecessary => "MissingParameter.ReceiverIdNecessary",
            ErrorCode::MissingParameterSendParamNecessary => "MissingParameter.SendParamNecessary",
            ErrorCode::MissingParameterTimedParamNecessary => "MissingParameter.TimedParamNecessary",
            ErrorCode::OperationDenied => "OperationDenied",
            ErrorCode::OperationDeniedDomainNotVerified => "OperationDenied.DomainNotVerified",
            ErrorCode::OperationDeniedExceedDomainLimit => "OperationDenied.ExceedDomainLimit",
            ErrorCode::OperationDeniedExceedSenderLimit => "OperationDenied.ExceedSenderLimit",
            ErrorCode::OperationDeniedNotAllowDelete => "OperationDenied.NotAllowDelete",
            ErrorCode::OperationDeniedReceiverIsOperating => "OperationDenied.ReceiverIsOperating",
            ErrorCode::OperationDeniedReceiverNotExist => "OperationDenied.ReceiverNotExist",
            ErrorCode::OperationDeniedReceiverStatusError => "OperationDenied.ReceiverStatusError",
            ErrorCode::OperationDeniedRepeatPassWord => "OperationDenied.RepeatPassWord",
            ErrorCode::OperationDeniedSendAddressStatusError => "OperationDenied.SendAddressStatusError",
            ErrorCode::OperationDeniedSenderWithDomainIsNotEmpty => "OperationDenied.SenderWithDomainIsNotEmpty",
            ErrorCode::OperationDeniedTemplateStatusError => "OperationDenied.TemplateStatusError",
            ErrorCode::RequestLimitExceeded => "RequestLimitExceeded",
            ErrorCode::ResourceInsufficient => "ResourceInsufficient",
            ErrorCode::ResourceNotFound => "ResourceNotFound",
            ErrorCode::ResourceUnavailable => "ResourceUnavailable",
            ErrorCode::UnknownParameter => "UnknownParameter",
            ErrorCode::UnsupportedOperation => "UnsupportedOperation",
            ErrorCode::AuthFailureSignatureFailure => "AuthFailure.SignatureFailure",
            ErrorCode::AuthFailureSignatureExpire => "AuthFailure.SignatureExpire",
            ErrorCode::AuthFailureSecretIdNotFound => "AuthFailure.SecretIdNotFound",
            ErrorCode::AuthFailureInvalidAuthorization => "AuthFailure.InvalidAuthorization",
            ErrorCode::AuthFailureMFAFailure => "AuthFailure.MFAFailure",
            ErrorCode::AuthFailureTokenFailure => "AuthFailure.TokenFailure",
            ErrorCode::AuthFailureInvalidSecretId => "AuthFailure.InvalidSecretId",
            ErrorCode::InvalidAction => "InvalidAction",
            ErrorCode::UnsupportedProtocol => "UnsupportedProtocol",
            ErrorCode::UnsupportedRegion => "UnsupportedRegion",
            ErrorCode::InvalidRequest => "InvalidRequest",
            ErrorCode::RequestSizeLimitExceeded => "RequestSizeLimitExceeded",
            ErrorCode::ResponseSizeLimitExceeded => "ResponseSizeLimitExceeded",
            ErrorCode::NoSuchVersion => "NoSuchVersion",
            ErrorCode::UnauthorizedOperation => "UnauthorizedOperation",
            ErrorCode::ServiceUnavailable => "ServiceUnavailable",
            ErrorCode::ActionOffline => "ActionOffline",
        }
    }

    /// A short default message (the SDK's description, in the SDK's words).
    pub fn default_message(self) -> &'static str {
        match self {
            ErrorCode::AuthFailureUnauthorizedOperation => "CAM 后台鉴权失败",
            ErrorCode::FailedOperation => "操作失败。",
            ErrorCode::FailedOperationAttachContentToolarge => "附件太大，请参考单个附件以及附件总量大小限制。",
            ErrorCode::FailedOperationDKIMNotApplied => "DKIM没有创建，需要提前创建",
            ErrorCode::FailedOperationEmailAddrInBlacklist => "邮件地址在黑名单中。",
            ErrorCode::FailedOperationEmailContentToolarge => "邮件内容太大，请减少发送邮件内容。",
            ErrorCode::FailedOperationExceedSendLimit => "超出当日总量发送限制。",
            ErrorCode::FailedOperationExceedTemplateLimit => "超出最大模板数量限制。",
            ErrorCode::FailedOperationFileURLNotExist => "链接地址无效或者不存在",
            ErrorCode::FailedOperationFrequencyLimit => "触发频率控制，短时间内对同一地址发送过多邮件。",
            ErrorCode::FailedOperationHighRejectionRate => "拒信率过高，被临时block。",
            ErrorCode::FailedOperationIllegalURL => "邮件包含不合规链接",
            ErrorCode::FailedOperationIncorrectEmail => "邮箱地址错误。",
            ErrorCode::FailedOperationIncorrectSender => "发件人格式不正确。请参考文档示例填写。",
            ErrorCode::FailedOperationInsufficientBalance => "余额不足，账号欠费等。",
            ErrorCode::FailedOperationInsufficientQuota => "套餐包额度不足。",
            ErrorCode::FailedOperationInvalidAttachName => {
                "不支持的附件名称，请检查附件名称是否含有特殊字符，详情请参考[附录附件说明](https://cloud.tencent.com/document/product/1288/51951)。"
            }
            ErrorCode::FailedOperationInvalidLimit => "超过查询限制，Limit最大支持100。",
            ErrorCode::FailedOperationInvalidTemplateID => "模板ID无效或者不可用。",
            ErrorCode::FailedOperationMissingEmailContent => "缺少发信内容（TemplateData和Simple不能同时为空)。",
            ErrorCode::FailedOperationNoAttachPermission => "没有附件发送权限，请检查。",
            ErrorCode::FailedOperationNotAuthenticatedSender => "发件sender没有经过认证，无法发送。",
            ErrorCode::FailedOperationNotSupportDate => "不支持查询该日期邮件记录，仅支持查询90天之内的数据。",
            ErrorCode::FailedOperationProtocolCheckErr => "协议检查错误，请检查协议是否正确。",
            ErrorCode::FailedOperationReceiverHasUnsubscribed => "收件人已退订。",
            ErrorCode::FailedOperationRejectedByRecipients => "邮件被收信人拒绝。",
            ErrorCode::FailedOperationSendEmailErr => "您的发送遇到问题，请联系腾讯云提交工单沟通原因并解决。",
            ErrorCode::FailedOperationServiceNotAvailable => "临时性错误，请求未生效，请重试。",
            ErrorCode::FailedOperationTemplateContentToolarge => "模板内容太大，请减少模板内容。",
            ErrorCode::FailedOperationTemporaryBlocked => {
                "因触发了对应的收件服务商限制，邮件推送平台会对该服务商发信暂停10分钟，10分钟后自动解除。"
            }
            ErrorCode::FailedOperationTooManyAttachments => "附件数量太多，单封邮件最多支持10个附件。",
            ErrorCode::FailedOperationTooManyRecipients => "收件人数太多，最多支持同时发送50人。",
            ErrorCode::FailedOperationURLForbidden => "禁止到达率低用户在邮件内容中带有URL 网页链接",
            ErrorCode::FailedOperationUnsupportMailType => "不支持的邮箱类型。",
            ErrorCode::FailedOperationWithOutPermission => "仅支持使用模板发送邮件。",
            ErrorCode::FailedOperationWrongContentJson => "TemplateData字段格式不正确，请保持为json格式。",
            ErrorCode::InternalError => "内部错误。",
            ErrorCode::InternalErrorQueryDataBaseFailed => "查询数据库超时或失败",
            ErrorCode::InvalidParameter => "参数错误。",
            ErrorCode::InvalidParameterAppIdIsRequired => "AppId不存在",
            ErrorCode::InvalidParameterInvalidEndTimeFormat => "结束时间格式错误",
            ErrorCode::InvalidParameterInvalidStartTimeFormat => "开始时间格式错误",
            ErrorCode::InvalidParameterValue => "参数取值错误。",
            ErrorCode::InvalidParameterValueAttachContentIsWrong => "附件内容错误，请检查base64内容是否正确。",
            ErrorCode::InvalidParameterValueBeginTimeBeforeNow => "开始时间不能早于当前时间。",
            ErrorCode::InvalidParameterValueCreatedByOther => "该域名已被其他腾讯云账号创建。",
            ErrorCode::InvalidParameterValueEmailAddressIsNULL => "收件或者发件地址为空，请检查邮件地址。",
            ErrorCode::InvalidParameterValueEmailContentIsWrong => "邮件内容错误，请检查TEXT/HTML base64是否正确。",
            ErrorCode::InvalidParameterValueIllegalEmailAddress => "邮件地址不合法，请检查邮件地址格式。",
            ErrorCode::InvalidParameterValueIllegalSenderName => "发信人别名错误。",
            ErrorCode::InvalidParameterValueInValidTemplateData => "收件人地址附带的模板参数不能包含html标签。",
            ErrorCode::InvalidParameterValueInvalidEmailIdentity => "域名取值错误。",
            ErrorCode::InvalidParameterValueInvalidSmtpPassWord => {
                "密码长度为10~20位，且必须至少包含2位不重复的数字、小写字母、大写字母。"
            }
            ErrorCode::InvalidParameterValueNoSuchSender => "您没有这个发件地址，请检查是否存在。",
            ErrorCode::InvalidParameterValueNotExistDomain => "该域名还没有创建，请先新建发信域名。",
            ErrorCode::InvalidParameterValueReceiverDescIllegal => {
                "收件人列表描述不合法，描述不可包含特殊字符，字符长度范围:1~300。"
            }
            ErrorCode::InvalidParameterValueReceiverEmailInvalid => "收件人地址错误。",
            ErrorCode::InvalidParameterValueReceiverNameIllegal => "收件人列表名字不合法，请检查字符内容及大小。",
            ErrorCode::InvalidParameterValueRepeatCreation => "该域名已经创建过了，请勿重复创建。",
            ErrorCode::InvalidParameterValueRepeatEmailAddress => "该邮件地址已经创建过了，请勿重复创建。",
            ErrorCode::InvalidParameterValueRepeatReceiverName => "收件人列表名称重复。",
            ErrorCode::InvalidParameterValueSubjectLengthError => "邮件主题长度必须为1-100。",
            ErrorCode::InvalidParameterValueTemplateContentIsNULL => "模板资源为空。",
            ErrorCode::InvalidParameterValueTemplateContentIsWrong => "模板内容错误，请检查base64内容是否正确。",
            ErrorCode::InvalidParameterValueTemplateDataError => "模板参数必须为json格式。",
            ErrorCode::InvalidParameterValueTemplateDataInconsistent => "模板参数变量名与之前不一致。",
            ErrorCode::InvalidParameterValueTemplateDataLenLimit => {
                "单条收件人地址附带的模板参数(整个 JSON 结构)， 长度超过限制 800 bytes"
            }
            ErrorCode::InvalidParameterValueTemplateNameIllegal => "模板名字不合法，请检查字符内容及大小。",
            ErrorCode::InvalidParameterValueTemplateNameIsNULL => "模板名字不能为空。",
            ErrorCode::InvalidParameterValueTemplateNotExist => "不存在该模板，请先创建模板。",
            ErrorCode::InvalidParameterValueTemplateNotMatchData => "模板变量与收件人列表参数不一一对应。",
            ErrorCode::InvalidParameterValueWrongDate => "搜索日期错误，请检查日期及格式是否有效。",
            ErrorCode::LimitExceeded => "超过配额限制。",
            ErrorCode::LimitExceededExceedReceiverLimit => "收件人列表数量超过限制。",
            ErrorCode::LimitExceededReceiverDetailCountLimit => "该收件人列表包含的收件人地址总量超过限制。",
            ErrorCode::LimitExceededReceiverDetailRequestLimit => "请求的收件人地址数量超过限制。",
            ErrorCode::MissingParameter => "缺少参数错误。",
            ErrorCode::MissingParameterCycleParamNecessary => "周期发送任务需选择开始时间和间隔时间。",
            ErrorCode::MissingParameterEmailsNecessary => "收件人地址必须传。",
            ErrorCode::MissingParameterReceiverIdNecessary => "收件人列表Id必传。",
            ErrorCode::MissingParameterSendParamNecessary => "发件地址、收件人列表,发件模板必须传。",
            ErrorCode::MissingParameterTimedParamNecessary => "定时发送任务需选择开始时间。",
            ErrorCode::OperationDenied => "操作被拒绝。",
            ErrorCode::OperationDeniedDomainNotVerified => "域名验证失败，请检查域名是否通过验证。",
            ErrorCode::OperationDeniedExceedDomainLimit => "超出最大发信域名限制。",
            ErrorCode::OperationDeniedExceedSenderLimit => "超出最大发信地址限制。",
            ErrorCode::OperationDeniedNotAllowDelete => "不允许删除域名",
            ErrorCode::OperationDeniedReceiverIsOperating => "收件人列表正在上传中，请稍后操作。",
            ErrorCode::OperationDeniedReceiverNotExist => "收件人列表不存在。",
            ErrorCode::OperationDeniedReceiverStatusError => "收件人列表空或状态不是上传完成。",
            ErrorCode::OperationDeniedRepeatPassWord => "不能与上一次设置密码相同。",
            ErrorCode::OperationDeniedSendAddressStatusError => "发信地址不存在或者状态不是通过状态。",
            ErrorCode::OperationDeniedSenderWithDomainIsNotEmpty => "与该域名相关的发信地址不为空",
            ErrorCode::OperationDeniedTemplateStatusError => "发信模板不存在或者状态不是审核通过状态。",
            ErrorCode::RequestLimitExceeded => "请求的次数超过了频率限制。",
            ErrorCode::ResourceInsufficient => "资源不足。",
            ErrorCode::ResourceNotFound => "资源不存在。",
            ErrorCode::ResourceUnavailable => "资源不可用。",
            ErrorCode::UnknownParameter => "未知参数错误。",
            ErrorCode::UnsupportedOperation => "操作不支持。",
            ErrorCode::AuthFailureSignatureFailure => "Signature verification failed.",
            ErrorCode::AuthFailureSignatureExpire => "The request timestamp is outside the allowed clock skew.",
            ErrorCode::AuthFailureSecretIdNotFound => "The SecretId does not exist.",
            ErrorCode::AuthFailureInvalidAuthorization => "The Authorization header is malformed.",
            ErrorCode::AuthFailureMFAFailure => "MFA failure.",
            ErrorCode::AuthFailureTokenFailure => "Token failure.",
            ErrorCode::AuthFailureInvalidSecretId => "The SecretId is invalid.",
            ErrorCode::InvalidAction => "The action does not exist.",
            ErrorCode::UnsupportedProtocol => "Unsupported protocol.",
            ErrorCode::UnsupportedRegion => "Unsupported region.",
            ErrorCode::InvalidRequest => "The request is invalid.",
            ErrorCode::RequestSizeLimitExceeded => "The request body is too large.",
            ErrorCode::ResponseSizeLimitExceeded => "The response is too large.",
            ErrorCode::NoSuchVersion => "The API version does not exist.",
            ErrorCode::UnauthorizedOperation => "Unauthorized operation.",
            ErrorCode::ServiceUnavailable => "Service unavailable.",
            ErrorCode::ActionOffline => "The action is offline.",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ErrorCode {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorCode::ALL.iter().copied().find(|c| c.as_str() == s).ok_or(())
    }
}

/// An error as the API reports it: a Tencent code and a message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// The Tencent error code.
    pub code: ErrorCode,
    /// What went wrong, naming the field where there is one.
    pub message: String,
}

impl ApiError {
    /// An error with an explicit message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }
}

impl From<ErrorCode> for ApiError {
    fn from(code: ErrorCode) -> Self {
        ApiError {
            code,
            message: code.default_message().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            assert!(seen.insert(c.as_str()), "duplicate {}", c.as_str());
            assert_eq!(c.as_str().parse::<ErrorCode>(), Ok(*c));
        }
        assert!(seen.contains("FailedOperation.FrequencyLimit"));
        assert!(seen.contains("AuthFailure.SignatureExpire"));
        assert!(seen.contains("InvalidParameterValue.SubjectLengthError"));
    }
}
